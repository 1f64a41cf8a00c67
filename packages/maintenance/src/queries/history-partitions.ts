import { sql, type Kysely } from 'kysely'
import { quoteIdent, type PartitionGranularity, type Database } from '@pgqueue/core/internal'

/** Drops one history partition (its rows go with it: this is the retention mechanism). */
export async function historyPartitionDrop(trx: Kysely<Database>, p: { schema: string; name: string }): Promise<void> {
  const { schema, name } = p
  // DROP of a partition takes ACCESS EXCLUSIVE on the parent for an instant; the caller bounds the
  // wait with lock_timeout so a long query on job_history delays retention instead of queueing
  // every history insert behind this statement.
  await sql.raw(`drop table if exists ${quoteIdent(schema)}.${quoteIdent(name)}`).execute(trx)
}

/** Detaches one history partition, leaving its table in the schema (no grants) for the owner to archive. */
export async function historyPartitionDetach(trx: Kysely<Database>, p: { schema: string; name: string }): Promise<void> {
  const { schema, name } = p
  // DETACH ... CONCURRENTLY is not allowed while a default partition exists, so this is the plain
  // form, with the same short parent lock as DROP.
  await sql.raw(`alter table ${quoteIdent(schema)}.job_history detach partition ${quoteIdent(schema)}.${quoteIdent(name)}`).execute(trx)
}

/**
 * One instant per period that has rows in the default partition within [from, to): the periods that
 * need a partition of their own. Scans the default partition, which holds only strays (rows that
 * arrived before their partition existed), so it stays small while Maintenance runs.
 */
export async function historyDefaultPeriodsList(
  trx: Kysely<Database>,
  p: { schema: string; granularity: PartitionGranularity; from: Date; to: Date; limit: number },
): Promise<Date[]> {
  const { schema } = p
  const { rows } = await sql<{ at: Date }>`
    select min(finished_at) as at
      from ${sql.raw(`${quoteIdent(schema)}.job_history_default`)}
     where finished_at >= ${p.from} and finished_at < ${p.to}
     group by date_trunc(${p.granularity}, finished_at, 'UTC')
     order by 1
     limit ${p.limit}`.execute(trx)
  return rows.map((r) => r.at)
}

/**
 * Deletes up to `limit` rows older than `before` from the default partition: rows that have no
 * partition to drop. By ctid, so each batch is one short scan that stops at `limit` and one TID delete.
 */
export async function historyDefaultExpiredDelete(trx: Kysely<Database>, p: { schema: string; before: Date; limit: number }): Promise<number> {
  const { schema } = p
  const t = sql.raw(`${quoteIdent(schema)}.job_history_default`)
  const res = await sql`
    delete from ${t}
     where ctid = any(array(select ctid from ${t} where finished_at < ${p.before} limit ${p.limit}))`.execute(trx)
  return Number(res.numAffectedRows ?? 0n)
}

/**
 * Deletes up to `limit` completion_counts rows older than `before` (the counts of completed jobs that
 * queues keep out of history go when history of the same age would). By ctid, as above; the BRIN index
 * on finished_at narrows the scan to the oldest block ranges.
 */
export async function completionCountsExpiredDelete(trx: Kysely<Database>, p: { schema: string; before: Date; limit: number }): Promise<number> {
  const { schema } = p
  const t = sql.raw(`${quoteIdent(schema)}.completion_counts`)
  const res = await sql`
    delete from ${t}
     where ctid = any(array(select ctid from ${t} where finished_at < ${p.before} limit ${p.limit}))`.execute(trx)
  return Number(res.numAffectedRows ?? 0n)
}
