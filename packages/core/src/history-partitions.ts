import { sql, type Kysely } from 'kysely'
import { quoteIdent, resolveSchemaOptions, type SchemaOptions } from './options.js'

/** Granularity of history partitions. */
export type PartitionGranularity = 'day' | 'week' | 'month'

/** A history partition and the [from, to) range of finished_at it holds. */
export interface HistoryPartition {
  name: string
  from: Date
  to: Date
}

/** The UTC start of the partition period that contains `at`. Weeks start on Monday. */
export function partitionStart(at: Date, granularity: PartitionGranularity): Date {
  const d = new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate()))
  if (granularity === 'week') d.setUTCDate(d.getUTCDate() - ((d.getUTCDay() + 6) % 7))
  if (granularity === 'month') d.setUTCDate(1)
  return d
}

/** The start of the period after the one starting at `start`. */
export function partitionEnd(start: Date, granularity: PartitionGranularity): Date {
  const d = new Date(start)
  if (granularity === 'day') d.setUTCDate(d.getUTCDate() + 1)
  if (granularity === 'week') d.setUTCDate(d.getUTCDate() + 7)
  if (granularity === 'month') d.setUTCMonth(d.getUTCMonth() + 1)
  return d
}

/** job_history_p20261128 for the period starting 2026-11-28. */
export function historyPartitionName(start: Date): string {
  return `job_history_p${start.toISOString().slice(0, 10).replace(/-/g, '')}`
}

/**
 * Creates the partition for the period containing `at`, if no partition covers `at` yet. Rows of that
 * period that landed in the default partition are moved into it first (attaching would fail otherwise).
 * When neighbouring partitions of another granularity overlap the period (the granularity was changed),
 * the new partition is clipped to the gap between them, so every instant can still get a partition.
 * The new table gets no privileges (default privileges are revoked): policies act through the parent.
 * Runs holding the `partitions` row of the schema's locks table (see lockCoordinationRow()), in its
 * own transaction, or inside `db` when it is a transaction, so concurrent callers do not collide.
 * Needs the schema owner.
 * Returns the partition, and whether it was created by this call.
 */
export async function createHistoryPartition(
  db: Kysely<any>,
  at: Date,
  options: SchemaOptions & { granularity?: PartitionGranularity } = {},
): Promise<HistoryPartition & { created: boolean; movedRows: number }> {
  const { schema } = resolveSchemaOptions(options)
  const granularity = options.granularity ?? 'day'
  const s = quoteIdent(schema)
  const work = async (trx: Kysely<any>) => {
    await lockCoordinationRow(trx, { schema, name: PARTITIONS_LOCK, wait: true })
    const existing = await listHistoryPartitions(trx, { schema })
    const covering = existing.find((p) => p.from <= at && p.to > at)
    if (covering) return { ...covering, created: false, movedRows: 0 }
    let from = partitionStart(at, granularity)
    let to = partitionEnd(from, granularity)
    for (const p of existing) {
      if (p.to <= at && p.to > from) from = p.to
      if (p.from > at && p.from < to) to = p.from
    }
    const name = historyPartitionName(from)
    const t = `${s}.${quoteIdent(name)}`
    // Writers wait while the partition set changes: an insert routed to the default partition just
    // before the attach would otherwise fail its new constraint. Readers are not blocked.
    await sql.raw(`lock table ${s}.job_history in exclusive mode`).execute(trx)
    await sql.raw(`create table ${t} (like ${s}.job_history including defaults including constraints)`).execute(trx)
    // As on the parent (migration 12): no planner statistics that would reveal a tenant's or key's row count.
    await sql.raw(`alter table ${t} alter column tenant_id set statistics 0, alter column key set statistics 0`).execute(trx)
    // Default privileges (ALTER DEFAULT PRIVILEGES) may have granted something: take it back.
    const { rows: grantees } = await sql<{ grantee: string }>`
      select distinct case when g.grantee = 0 then 'public' else quote_ident(r.rolname) end as grantee
        from pg_class c cross join lateral aclexplode(c.relacl) g left join pg_roles r on r.oid = g.grantee
       where c.oid = ${t}::regclass and g.grantee <> c.relowner`.execute(trx)
    for (const g of grantees) await sql.raw(`revoke all on ${t} from ${g.grantee}`).execute(trx)
    const moved = await sql.raw(
      `with moved as (delete from ${s}.job_history_default where finished_at >= '${from.toISOString()}' and finished_at < '${to.toISOString()}' returning *)
       insert into ${t} select * from moved`,
    ).execute(trx)
    await sql.raw(`alter table ${s}.job_history attach partition ${t} for values from ('${from.toISOString()}') to ('${to.toISOString()}')`).execute(trx)
    return { name, from, to, created: true, movedRows: Number(moved.numAffectedRows ?? 0n) }
  }
  return db.isTransaction ? work(db) : db.transaction().execute(work)
}

/** The locks row that partition creation, Maintenance's partitions task and its retention task share. */
export const PARTITIONS_LOCK = 'partitions'

/**
 * Locks one row of the schema's `locks` table (migration 13) for the rest of the transaction and
 * returns true; with `wait: false`, returns false at once when another transaction holds it (SKIP
 * LOCKED). FOR UPDATE needs UPDATE on the table, which only its owner has, so no other login can hold
 * pgqueue's coordination hostage the way any login can take an advisory lock. A missing row is
 * created (and held until commit).
 */
export async function lockCoordinationRow(trx: Kysely<any>, p: { schema: string; name: string; wait: boolean }): Promise<boolean> {
  const { schema, name } = p
  const t = sql.raw(`${quoteIdent(schema)}.locks`)
  const mode = sql.raw(p.wait ? 'for update' : 'for update skip locked')
  const { rows } = await sql<{ name: string }>`select name from ${t} where name = ${name} ${mode}`.execute(trx)
  if (rows.length > 0) return true
  const { rows: inserted } = await sql<{ name: string }>`insert into ${t} (name) values (${name}) on conflict do nothing returning name`.execute(trx)
  if (inserted.length > 0) return true
  if (!p.wait) return false
  // Inserted meanwhile by another transaction, which has committed by now: wait for its row.
  return (await sql`select name from ${t} where name = ${name} for update`.execute(trx)).rows.length > 0
}

/** The range partitions of job_history (the default partition excluded), oldest first. */
export async function listHistoryPartitions(db: Kysely<any>, options: SchemaOptions = {}): Promise<HistoryPartition[]> {
  const { schema } = resolveSchemaOptions(options)
  const { rows } = await sql<{ name: string; bound: string }>`
    select c.relname as name, pg_get_expr(c.relpartbound, c.oid) as bound
      from pg_inherits i
      join pg_class c on c.oid = i.inhrelid
      join pg_class p on p.oid = i.inhparent
      join pg_namespace n on n.oid = p.relnamespace
     where n.nspname = ${schema} and p.relname = 'job_history'`.execute(db)
  const out: HistoryPartition[] = []
  for (const r of rows) {
    const m = /FROM \('([^']+)'\) TO \('([^']+)'\)/.exec(r.bound)
    if (!m) continue // the default partition
    out.push({ name: r.name, from: parsePgTimestamp(m[1]!), to: parsePgTimestamp(m[2]!) })
  }
  return out.sort((a, b) => a.from.getTime() - b.from.getTime())
}

/** Parses PostgreSQL's timestamptz text ('2026-11-28 00:00:00+00', '... +05:30'). */
function parsePgTimestamp(text: string): Date {
  const m = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2}(?:\.\d+)?)([+-]\d{2})(?::?(\d{2}))?$/.exec(text)
  return m ? new Date(`${m[1]}T${m[2]}${m[3]}:${m[4] ?? '00'}`) : new Date(text)
}
