import { sql, type Kysely } from 'kysely'
import type pg from 'pg'
import { quoteIdent, type Database } from '@pgqueue/core/internal'

/** Raw health figures of one table, as read from the statistics views. */
export interface TableStatsRow {
  live_tuples: number
  dead_tuples: number
  mod_since_analyze: number
  table_bytes: number
  total_bytes: number
  xid_age: number
  autovacuum_threshold: number
  last_vacuum: Date | null
  last_autovacuum: Date | null
  last_analyze: Date | null
  last_autoanalyze: Date | null
  vacuum_count: number
  autovacuum_count: number
  vacuum_running: boolean
  now: Date
}

/**
 * Health of a table from pg_stat_user_tables and pg_class: live and dead tuples, sizes, the last
 * (auto)vacuum and (auto)analyze, and the dead-tuple count at which autovacuum would start, computed
 * like autovacuum does (threshold + scale_factor * reltuples, per-table reloptions over the settings).
 * Statistics are flushed by each backend about once a second, so the figures lag a little.
 */
export async function tableStatsRead(db: Kysely<Database>, p: { schema: string; table: string }): Promise<TableStatsRow | undefined> {
  const { schema, table } = p
  const { rows } = await sql<TableStatsRow>`
    select coalesce(s.n_live_tup, 0)::float8 as live_tuples,
           coalesce(s.n_dead_tup, 0)::float8 as dead_tuples,
           coalesce(s.n_mod_since_analyze, 0)::float8 as mod_since_analyze,
           pg_relation_size(c.oid)::float8 as table_bytes,
           pg_total_relation_size(c.oid)::float8 as total_bytes,
           age(c.relfrozenxid)::float8 as xid_age,
           (coalesce((select option_value from pg_options_to_table(c.reloptions) where option_name = 'autovacuum_vacuum_threshold'),
                     current_setting('autovacuum_vacuum_threshold'))::float8
            + coalesce((select option_value from pg_options_to_table(c.reloptions) where option_name = 'autovacuum_vacuum_scale_factor'),
                       current_setting('autovacuum_vacuum_scale_factor'))::float8 * greatest(c.reltuples, 0)) as autovacuum_threshold,
           s.last_vacuum, s.last_autovacuum, s.last_analyze, s.last_autoanalyze,
           coalesce(s.vacuum_count, 0)::float8 as vacuum_count,
           coalesce(s.autovacuum_count, 0)::float8 as autovacuum_count,
           exists (select 1 from pg_stat_progress_vacuum v where v.relid = c.oid) as vacuum_running,
           now() as now
      from pg_class c
      join pg_namespace n on n.oid = c.relnamespace
      left join pg_stat_user_tables s on s.relid = c.oid
     where n.nspname = ${schema} and c.relname = ${table}`.execute(db)
  return rows[0]
}

/**
 * VACUUM (ANALYZE, SKIP_LOCKED) of one table. VACUUM cannot run inside a transaction, so no
 * transaction-scoped row lock can guard it; SKIP_LOCKED does instead: when another instance (or
 * autovacuum) already holds the table's vacuum lock, this returns at once without vacuuming.
 * Needs the table owner (the admin). Runs on a pool connection of its own, outside any transaction.
 */
export async function tableVacuum(pool: pg.Pool, p: { schema: string; table: string }): Promise<void> {
  const { schema, table } = p
  await pool.query(`vacuum (analyze, skip_locked) ${quoteIdent(schema)}.${quoteIdent(table)}`)
}
