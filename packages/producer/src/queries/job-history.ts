import { sql, type Kysely, type Selectable } from 'kysely'
import type { Database, HistoryState, JobHistoryTable } from '@pgqueue/core/internal'

/** A job_history row, with finished_at also as exact microseconds since the epoch (for cursors). */
export type HistoryRow = Selectable<JobHistoryTable> & { finished_us: string }

/** finished_at in whole microseconds: a JS Date keeps only milliseconds, too coarse for a keyset. */
const finishedUs = sql<string>`(extract(epoch from finished_at) * 1000000)::bigint::text`.as('finished_us')
const fromUs = (us: string) => sql<Date>`(timestamptz 'epoch' + ${us}::bigint * interval '1 microsecond')`

/** A history entry by job id, or undefined. Served by job_history_id_idx (tenant_id, id) across partitions. */
export async function jobHistoryGetById(db: Kysely<Database>, params: { schema: string; tenantId: string; id: string }): Promise<HistoryRow | undefined> {
  return (await db.withSchema(params.schema).selectFrom('job_history').selectAll().select(finishedUs)
    .where('tenant_id', '=', params.tenantId).where('id', '=', params.id)
    .orderBy('finished_at', 'desc').limit(1)
    .executeTakeFirst()) as HistoryRow | undefined
}

/**
 * A page of history, most recently finished first. Keyset on (finished_at, id) with the position kept in
 * microseconds, so entries finished within one millisecond are neither skipped nor repeated; with a queue
 * filter job_history_tenant_queue_idx (tenant_id, queue, finished_at desc, id desc) serves the order.
 */
export async function jobHistoryList(
  db: Kysely<Database>,
  params: {
    schema: string
    tenantId: string
    queue?: string
    states?: HistoryState[]
    type?: string
    since?: Date
    until?: Date
    after?: { finishedUs: string; id: string }
    scheduleId?: string
    limit: number
  },
): Promise<HistoryRow[]> {
  let q = db.withSchema(params.schema).selectFrom('job_history').selectAll().select(finishedUs).where('tenant_id', '=', params.tenantId)
  if (params.queue !== undefined) q = q.where('queue', '=', params.queue)
  if (params.states !== undefined) q = q.where('state', 'in', params.states)
  if (params.type !== undefined) q = q.where('type', '=', params.type)
  if (params.scheduleId !== undefined) q = q.where('schedule_id', '=', params.scheduleId)
  if (params.since !== undefined) q = q.where('finished_at', '>=', params.since)
  if (params.until !== undefined) q = q.where('finished_at', '<', params.until)
  if (params.after !== undefined) {
    const after = params.after
    q = q.where(sql<boolean>`(finished_at, id) < (${fromUs(after.finishedUs)}, ${after.id}::uuid)`)
  }
  return (await q.orderBy('finished_at', 'desc').orderBy('id', 'desc').limit(params.limit).execute()) as HistoryRow[]
}

/** History entries of a schedule's runs, newest job first (keyset on id, like jobListBySchedule). */
export async function jobHistoryListBySchedule(
  db: Kysely<Database>,
  params: { schema: string; tenantId: string; scheduleId: string; beforeId?: string; limit: number },
): Promise<HistoryRow[]> {
  let q = db.withSchema(params.schema).selectFrom('job_history').selectAll().select(finishedUs)
    .where('tenant_id', '=', params.tenantId).where('schedule_id', '=', params.scheduleId)
  if (params.beforeId !== undefined) q = q.where('id', '<', params.beforeId)
  return (await q.orderBy('id', 'desc').limit(params.limit).execute()) as HistoryRow[]
}
