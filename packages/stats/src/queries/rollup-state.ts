import { sql, type Kysely } from 'kysely'
import { quoteIdent, type Database } from '@pgqueue/core/internal'

/** How far Maintenance's rollups and live snapshot reach, as the database returns it. */
export interface RollupStateRow {
  rolled_up_to: Date | null
  minutes_from: Date | null
  live_counts_at: Date | null
  /** The database's clock, to judge the snapshot's age with the clock that stamped it. */
  now: Date
}

/** The single stats_rollup_state row (worker role). */
export async function rollupStateRead(db: Kysely<Database>, p: { schema: string }): Promise<RollupStateRow | undefined> {
  const { schema } = p
  const { rows } = await sql<RollupStateRow>`
    select rolled_up_to, minutes_from, live_counts_at, now() as now
      from ${sql.raw(`${quoteIdent(schema)}.stats_rollup_state`)}`.execute(db)
  return rows[0]
}

/** Whether this role may read the rollup state (false for the user role, or before migration 9). */
export async function rollupStateReadable(db: Kysely<Database>, p: { schema: string }): Promise<boolean> {
  const { schema } = p
  const name = `${quoteIdent(schema)}.stats_rollup_state`
  const { rows } = await sql<{ ok: boolean | null }>`
    select has_table_privilege(to_regclass(${name}), 'select') as ok`.execute(db)
  return rows[0]?.ok === true
}
