import { CompiledQuery, sql, type Kysely, type Selectable } from 'kysely'
import { quoteIdent, unquotedArrayLiteral, type Database, type JobState, type JobsTable } from '@pgqueue/core/internal'
import type pg from 'pg'
import type { PushRow } from '../push-input.js'

/** Every jobs column the user role may read: never vt (column privilege) nor lease_owner. */
export const JOB_COLUMNS = [
  'tenant_id', 'id', 'queue', 'type', 'key', 'state', 'priority', 'run_at', 'payload', 'payload_type', 'target',
  'attempt', 'max_attempts', 'retry_policy', 'lease_expires_at', 'cancel_requested', 'last_error', 'schedule_id',
  'retry_of', 'created_at', 'updated_at', 'started_at', 'flow_id',
] as const

/** A jobs row as selected with JOB_COLUMNS. */
export type JobRow = Pick<Selectable<JobsTable>, (typeof JOB_COLUMNS)[number]>

/** One row returned by push_jobs(). */
export interface PushedRow {
  id: string
  queue: string
  key: string | null
  state: JobState
  run_at: Date
  created_at: Date
  outcome: 'created' | 'replaced' | 'running'
}

/** push_jobs() output as selected: timestamps as epoch milliseconds (see jobPushMany). */
interface PushedRowMs {
  id: string
  queue: string
  key: string | null
  state: JobState
  run_at_ms: number
  created_at_ms: number
  outcome: PushedRow['outcome']
}

/**
 * Inserts or replaces `rows` for one tenant through push_jobs(): one statement, one round trip. The
 * function signs the transaction in as the tenant with `token` itself (so no BEGIN/set_config chatter;
 * a wrong token raises 42501 and writes nothing), stamps fair virtual
 * times and upserts by key without touching running jobs. The rows travel as 13 parallel arrays
 * (unnest on the server), so 1,000 jobs cost one statement. Runs on a Kysely instance or transaction,
 * or on a caller's pg client inside BEGIN.
 * Timestamps come back as epoch milliseconds and the generated ids and integers go as array literals:
 * pg's timestamptz text parser and its per-element array escaping were the largest costs of a bulk push
 * in the client's profile.
 */
export async function jobPushMany(
  target: Kysely<Database> | pg.ClientBase,
  params: { schema: string; tenantId: string; token: string; rows: readonly PushRow[]; traceContext?: string | undefined },
): Promise<PushedRow[]> {
  const { rows } = params
  const values: unknown[] = [
    params.tenantId,
    params.token,
    // Ids are generated (uuidv7), never caller text, so the literal cannot be malformed.
    unquotedArrayLiteral(rows.map((r) => r.id)),
    rows.map((r) => r.queue),
    rows.map((r) => r.type),
    rows.map((r) => r.key),
    rows.map((r) => r.payload),
    rows.map((r) => r.payloadType),
    rows.map((r) => r.target),
    unquotedArrayLiteral(rows.map((r) => r.priority)),
    rows.map((r) => r.runAt),
    unquotedArrayLiteral(rows.map((r) => r.maxAttempts)),
    rows.map((r) => r.retryPolicy),
    rows.map((r) => r.scheduleId),
    rows.map((r) => r.retryOf),
  ]
  // Costs travel only when some job has one (p_costs, migration 18): the usual push is unchanged.
  const costly = rows.some((r) => r.cost !== undefined && r.cost !== 1)
  if (costly) values.push(unquotedArrayLiteral(rows.map((r) => r.cost ?? 1)))
  // With a trace context (JSON text of a W3C carrier), the tenant argument is a subquery that first sets
  // pgqueue.trace_context for this transaction: arguments are evaluated before push_jobs() runs, and
  // push_jobs_unchecked() stores it with the jobs and clears it (migration 0020). Still one statement.
  let tenantArg = '$1'
  if (params.traceContext !== undefined) {
    values.push(params.traceContext)
    tenantArg = `(select $1::text from set_config('pgqueue.trace_context', $${values.length}, true))`
  }
  const text =
    'select id, queue, key, state, (extract(epoch from run_at) * 1000)::float8 as run_at_ms, ' +
    '(extract(epoch from created_at) * 1000)::float8 as created_at_ms, outcome ' +
    `from ${quoteIdent(params.schema)}.push_jobs(${tenantArg}, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15${costly ? ', $16' : ''})`
  const out = isKysely(target)
    ? (await target.executeQuery<PushedRowMs>(CompiledQuery.raw(text, values))).rows
    : (await target.query<PushedRowMs>(text, values)).rows
  return out.map((r) => ({
    id: r.id,
    queue: r.queue,
    key: r.key,
    state: r.state,
    run_at: new Date(r.run_at_ms),
    created_at: new Date(r.created_at_ms),
    outcome: r.outcome,
  }))
}

function isKysely(value: unknown): value is Kysely<Database> {
  return typeof (value as Kysely<Database>).executeQuery === 'function' && typeof (value as Kysely<Database>).selectFrom === 'function'
}

/** A live job by id, or undefined. */
export async function jobGetById(db: Kysely<Database>, params: { schema: string; tenantId: string; id: string }): Promise<JobRow | undefined> {
  return (await db.withSchema(params.schema).selectFrom('jobs').select(JOB_COLUMNS)
    .where('tenant_id', '=', params.tenantId).where('id', '=', params.id)
    .executeTakeFirst()) as JobRow | undefined
}

/** A live job by its user key, or undefined (keys are unique among live jobs only). */
export async function jobGetByKey(db: Kysely<Database>, params: { schema: string; tenantId: string; queue: string; key: string }): Promise<JobRow | undefined> {
  return (await db.withSchema(params.schema).selectFrom('jobs').select(JOB_COLUMNS)
    .where('tenant_id', '=', params.tenantId).where('queue', '=', params.queue).where('key', '=', params.key)
    .executeTakeFirst()) as JobRow | undefined
}

/**
 * A page of live jobs, newest first. Keyset on id (UUIDv7 sorts by creation time), so a page costs
 * the same however deep it is; the primary key (tenant_id, id) serves the order.
 */
export async function jobList(
  db: Kysely<Database>,
  params: { schema: string; tenantId: string; queue?: string; states?: JobState[]; type?: string; since?: Date; until?: Date; afterId?: string; limit: number },
): Promise<JobRow[]> {
  let q = db.withSchema(params.schema).selectFrom('jobs').select(JOB_COLUMNS).where('tenant_id', '=', params.tenantId)
  if (params.queue !== undefined) q = q.where('queue', '=', params.queue)
  if (params.states !== undefined) q = q.where('state', 'in', params.states)
  if (params.type !== undefined) q = q.where('type', '=', params.type)
  if (params.since !== undefined) q = q.where('created_at', '>=', params.since)
  if (params.until !== undefined) q = q.where('created_at', '<', params.until)
  if (params.afterId !== undefined) q = q.where('id', '<', params.afterId)
  return (await q.orderBy('id', 'desc').limit(params.limit).execute()) as JobRow[]
}

/** Which job a statement addresses: by id or by (queue, key). */
export type JobSelector = { id: string } | { queue: string; key: string }

/**
 * Removes one job through job_remove() (the user role has no DELETE or UPDATE on jobs, so it can neither
 * lock the table nor hold a running job's row): a waiting job is deleted, and with `archive` recorded in
 * history as cancelled in the same statement; a running job is only flagged, and its worker aborts it at
 * its next lease renewal. Undefined when no job matched.
 */
export async function jobRemove(
  db: Kysely<Database>,
  params: { schema: string; tenantId: string; selector: JobSelector; archive: boolean },
): Promise<{ id: string; action: 'deleted' | 'cancelled' | 'flagged' } | undefined> {
  const sel = params.selector
  const { rows } = await sql<{ id: string; action: 'deleted' | 'cancelled' | 'flagged' }>`
    select id, action from ${sql.id(params.schema, 'job_remove')}(${params.tenantId},
      ${'id' in sel ? sel.id : null}::uuid, ${'id' in sel ? null : sel.queue}::text, ${'id' in sel ? null : sel.key}::text,
      ${params.archive})`.execute(db)
  return rows[0]
}

/**
 * Moves a (tenant, queue)'s pending jobs to 'held' (clearing their virtual time) when it is paused or
 * capped, so the claim never has to look at pauses or caps; the Scheduler releases them later.
 */
export async function jobHoldPending(db: Kysely<Database>, params: { schema: string; tenantId: string; queue: string }): Promise<number> {
  // Through hold_jobs(): the user role has no UPDATE on state or vt (it could jump the fair order).
  const { rows } = await sql<{ moved: number }>`select ${sql.raw(quoteIdent(params.schema))}.hold_jobs(${params.tenantId}, ${params.queue}) as moved`.execute(db)
  return rows[0]?.moved ?? 0
}

/** Live jobs fired by a schedule, newest first, keyset on id. */
export async function jobListBySchedule(
  db: Kysely<Database>,
  params: { schema: string; tenantId: string; scheduleId: string; beforeId?: string; limit: number },
): Promise<JobRow[]> {
  let q = db.withSchema(params.schema).selectFrom('jobs').select(JOB_COLUMNS)
    .where('tenant_id', '=', params.tenantId).where('schedule_id', '=', params.scheduleId)
  if (params.beforeId !== undefined) q = q.where('id', '<', params.beforeId)
  return (await q.orderBy('id', 'desc').limit(params.limit).execute()) as JobRow[]
}
