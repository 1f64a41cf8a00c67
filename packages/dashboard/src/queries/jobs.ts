import { sql, type Kysely } from 'kysely'
import type { Database, HistoryState, JobState } from '@pgqueue/core/internal'

/** The columns the user role may read from the live table (no vt, no lease_owner). */
const LIVE_COLUMNS = [
  'tenant_id', 'id', 'queue', 'type', 'key', 'state', 'priority', 'run_at', 'payload', 'payload_type', 'target',
  'attempt', 'max_attempts', 'retry_policy', 'lease_expires_at', 'cancel_requested', 'last_error', 'schedule_id',
  'retry_of', 'created_at', 'updated_at', 'started_at',
] as const

/** One row of a job listing, live or finished, in one shape. */
export interface JobListRow {
  tenant_id: string
  id: string
  queue: string
  type: string
  key: string | null
  state: JobState | HistoryState
  attempt: number
  max_attempts: number
  target: unknown
  error: unknown
  created_at: Date
  run_at: Date
  finished_at: Date | null
  /** finished_at in microseconds, the history keyset position. */
  finished_us: string | null
}

/** Filters of a job listing; tenantId is set in tenant mode (RLS scopes the rows anyway). */
export interface JobFilter {
  schema: string
  tenantId?: string
  queue?: string
  type?: string
  since?: Date
  until?: Date
  /** A JSON object the target must contain (jsonb @>), e.g. { customer: { id: 7 } }. */
  targetContains?: unknown
  limit: number
}

/**
 * Live jobs, newest first by id (UUIDv7: creation order). Keyset on id, so every page is an index range
 * scan of the primary key's id part whatever the depth; state filters use jobs_state_idx.
 */
export async function jobListLive(db: Kysely<Database>, p: JobFilter & { states?: JobState[]; beforeId?: string }): Promise<JobListRow[]> {
  let q = db.withSchema(p.schema).selectFrom('jobs').select([
    'tenant_id', 'id', 'queue', 'type', 'key', 'state', 'attempt', 'max_attempts', 'target', 'created_at', 'run_at',
    sql<unknown>`last_error`.as('error'), sql<null>`null::timestamptz`.as('finished_at'), sql<null>`null::text`.as('finished_us'),
  ])
  if (p.tenantId !== undefined) q = q.where('tenant_id', '=', p.tenantId)
  if (p.states !== undefined) q = q.where('state', 'in', p.states)
  if (p.queue !== undefined) q = q.where('queue', '=', p.queue)
  if (p.type !== undefined) q = q.where('type', '=', p.type)
  if (p.since !== undefined) q = q.where('created_at', '>=', p.since)
  if (p.until !== undefined) q = q.where('created_at', '<', p.until)
  if (p.targetContains !== undefined) q = q.where(sql<boolean>`target @> ${JSON.stringify(p.targetContains)}::jsonb`)
  if (p.beforeId !== undefined) q = q.where('id', '<', p.beforeId)
  return (await q.orderBy('id', 'desc').limit(p.limit).execute()) as JobListRow[]
}

/**
 * Finished jobs, most recently finished first; keyset on (finished_at, id) in microseconds. The time
 * range filters finished_at, so only the history partitions it touches are read.
 */
export async function jobListHistory(
  db: Kysely<Database>,
  p: JobFilter & { states?: HistoryState[]; after?: { finishedUs: string; id: string } },
): Promise<JobListRow[]> {
  let q = db.withSchema(p.schema).selectFrom('job_history').select([
    'tenant_id', 'id', 'queue', 'type', 'key', 'state', 'attempt', 'max_attempts', 'target', 'created_at', 'run_at', 'error', 'finished_at',
    sql<string>`(extract(epoch from finished_at) * 1000000)::bigint::text`.as('finished_us'),
  ])
  if (p.tenantId !== undefined) q = q.where('tenant_id', '=', p.tenantId)
  if (p.states !== undefined) q = q.where('state', 'in', p.states)
  if (p.queue !== undefined) q = q.where('queue', '=', p.queue)
  if (p.type !== undefined) q = q.where('type', '=', p.type)
  if (p.since !== undefined) q = q.where('finished_at', '>=', p.since)
  if (p.until !== undefined) q = q.where('finished_at', '<', p.until)
  if (p.targetContains !== undefined) q = q.where(sql<boolean>`target @> ${JSON.stringify(p.targetContains)}::jsonb`)
  if (p.after !== undefined) {
    q = q.where(sql<boolean>`(finished_at, id) < (timestamptz 'epoch' + ${p.after.finishedUs}::bigint * interval '1 microsecond', ${p.after.id}::uuid)`)
  }
  return (await q.orderBy('finished_at', 'desc').orderBy('id', 'desc').limit(p.limit).execute()) as JobListRow[]
}

/** A live job by id (every readable column), or undefined. */
export async function jobGetLive(db: Kysely<Database>, p: { schema: string; tenantId?: string; id: string }) {
  let q = db.withSchema(p.schema).selectFrom('jobs').select([...LIVE_COLUMNS]).where('id', '=', p.id)
  if (p.tenantId !== undefined) q = q.where('tenant_id', '=', p.tenantId)
  return q.limit(1).executeTakeFirst()
}

/** A finished job by id, or undefined. */
export async function jobGetHistory(db: Kysely<Database>, p: { schema: string; tenantId?: string; id: string }) {
  let q = db.withSchema(p.schema).selectFrom('job_history').selectAll().where('id', '=', p.id)
  if (p.tenantId !== undefined) q = q.where('tenant_id', '=', p.tenantId)
  return q.orderBy('finished_at', 'desc').limit(1).executeTakeFirst()
}

