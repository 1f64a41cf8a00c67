import { sql, type Kysely } from 'kysely'
import type { Database, HistoryState, JobState } from '@pgqueue/core/internal'

/** The columns the user role may read from the live table (no vt, no lease_owner). */
const LIVE_COLUMNS = [
  'tenant_id', 'id', 'queue', 'type', 'key', 'state', 'priority', 'run_at', 'payload', 'payload_type', 'target',
  'attempt', 'max_attempts', 'retry_policy', 'lease_expires_at', 'cancel_requested', 'last_error', 'schedule_id',
  'retry_of', 'created_at', 'updated_at', 'started_at', 'flow_id',
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

const LIST_LIVE = sql.raw(`tenant_id, id, queue, type, key, state, attempt, max_attempts, target, created_at, run_at,
  last_error as error, null::timestamptz as finished_at, null::text as finished_us`)
const LIST_HISTORY = sql.raw(`tenant_id, id, queue, type, key, state, attempt, max_attempts, target, created_at, run_at,
  error, finished_at, (extract(epoch from finished_at) * 1000000)::bigint::text as finished_us`)

/** The filter's conditions other than the tenant, on `time` (created_at for live jobs, finished_at for history). */
function conditions(p: JobFilter, time: 'created_at' | 'finished_at', states: readonly string[] | undefined) {
  const c = [sql`true`]
  if (states !== undefined) c.push(sql`state = any(${[...states]}::text[])`)
  if (p.queue !== undefined) c.push(sql`queue = ${p.queue}`)
  if (p.type !== undefined) c.push(sql`type = ${p.type}`)
  if (p.since !== undefined) c.push(sql`${sql.ref(time)} >= ${p.since}`)
  if (p.until !== undefined) c.push(sql`${sql.ref(time)} < ${p.until}`)
  if (p.targetContains !== undefined) c.push(sql`target @> ${JSON.stringify(p.targetContains)}::jsonb`)
  return sql.join(c, sql` and `)
}

/**
 * Newest rows first over every tenant, without an index on the order alone: a skip-scan finds the
 * tenants through the primary key (one probe each), each tenant's newest `limit` rows come from its own
 * primary-key range, and the merge keeps the newest `limit`. The cost grows with the number of tenants
 * and the page size, not with the rows in the table.
 */
function acrossTenants(table: string, columns: ReturnType<typeof sql.raw>, where: ReturnType<typeof sql.join>, order: ReturnType<typeof sql.raw>, limit: number, tenantWhere = sql`true`) {
  const t = sql.table(table)
  return sql`
    with recursive tenants(tenant_id) as (
      select min(tenant_id) from ${t} where ${tenantWhere}
      union all
      select (select min(tenant_id) from ${t} where tenant_id > tenants.tenant_id and ${tenantWhere}) from tenants where tenants.tenant_id is not null
    )
    select j.* from tenants cross join lateral (
      select ${columns} from ${t} where tenant_id = tenants.tenant_id and ${where} order by ${order} limit ${limit}
    ) j order by ${order} limit ${limit}`
}

/**
 * Live jobs, newest first by id (UUIDv7: creation order), keyset on id. A tenant's page is a range of
 * the primary key (tenant_id, id); the operator's, across tenants, is acrossTenants().
 */
export async function jobListLive(db: Kysely<Database>, p: JobFilter & { states?: JobState[]; beforeId?: string }): Promise<JobListRow[]> {
  const where = sql.join([conditions(p, 'created_at', p.states), p.beforeId === undefined ? sql`true` : sql`id < ${p.beforeId}::uuid`], sql` and `)
  const table = `${p.schema}.jobs`
  const order = sql.raw('id desc')
  const q = p.tenantId !== undefined
    ? sql<JobListRow>`select ${LIST_LIVE} from ${sql.table(table)} where tenant_id = ${p.tenantId} and ${where} order by ${order} limit ${p.limit}`
    : acrossTenants(table, LIST_LIVE, where, order, p.limit)
  return (await q.execute(db)).rows as JobListRow[]
}

/**
 * Finished jobs, most recently finished first; keyset on (finished_at, id) in microseconds. The time
 * range filters finished_at, so only the history partitions it touches are read; a tenant's page follows
 * the primary key (tenant_id, finished_at, id) of each partition.
 */
export async function jobListHistory(
  db: Kysely<Database>,
  p: JobFilter & { states?: HistoryState[]; after?: { finishedUs: string; id: string } },
): Promise<JobListRow[]> {
  const after = p.after === undefined
    ? sql`true`
    : sql`(finished_at, id) < (timestamptz 'epoch' + ${p.after.finishedUs}::bigint * interval '1 microsecond', ${p.after.id}::uuid)`
  const where = sql.join([conditions(p, 'finished_at', p.states), after], sql` and `)
  const table = `${p.schema}.job_history`
  const order = sql.raw('finished_at desc, id desc')
  const window = sql.join([p.since === undefined ? sql`true` : sql`finished_at >= ${p.since}`, p.until === undefined ? sql`true` : sql`finished_at < ${p.until}`], sql` and `)
  const q = p.tenantId !== undefined
    ? sql<JobListRow>`select ${LIST_HISTORY} from ${sql.table(table)} where tenant_id = ${p.tenantId} and ${where} order by ${order} limit ${p.limit}`
    : acrossTenants(table, LIST_HISTORY, where, order, p.limit, window)
  return (await q.execute(db)).rows as JobListRow[]
}

/**
 * The earliest time a job with this id can have finished: a UUIDv7 carries its creation time in its first
 * 48 bits, and a job finishes after it is created. A day of slack covers a producer's clock running ahead.
 * Lets a lookup by id skip older history partitions; undefined for other UUID versions.
 */
export function finishedNotBefore(id: string): Date | undefined {
  if (id[14] !== '7') return undefined
  const ms = Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16)
  return Number.isFinite(ms) ? new Date(ms - 86_400_000) : undefined
}

/** A live job by id (every readable column), or undefined; without a tenant, one probe of the primary key per tenant. */
export async function jobGetLive(db: Kysely<Database>, p: { schema: string; tenantId?: string; id: string }) {
  const jobs = db.withSchema(p.schema).selectFrom('jobs').select([...LIVE_COLUMNS]).where('id', '=', p.id)
  if (p.tenantId !== undefined) return jobs.where('tenant_id', '=', p.tenantId).limit(1).executeTakeFirst()
  const t = sql.table(`${p.schema}.jobs`)
  const r = await sql<Awaited<ReturnType<typeof jobs.executeTakeFirstOrThrow>>>`
    with recursive tenants(tenant_id) as (
      select min(tenant_id) from ${t}
      union all
      select (select min(tenant_id) from ${t} where tenant_id > tenants.tenant_id) from tenants where tenants.tenant_id is not null
    )
    select j.* from tenants cross join lateral (
      select ${sql.raw(LIVE_COLUMNS.join(', '))} from ${t} where tenant_id = tenants.tenant_id and id = ${p.id}::uuid
    ) j limit 1`.execute(db)
  return r.rows[0]
}

/** A finished job by id, or undefined; the id's time skips older partitions, and without a tenant the tenants are probed one by one. */
export async function jobGetHistory(db: Kysely<Database>, p: { schema: string; tenantId?: string; id: string }) {
  const since = finishedNotBefore(p.id)
  let q = db.withSchema(p.schema).selectFrom('job_history').selectAll().where('id', '=', p.id)
  if (since !== undefined) q = q.where('finished_at', '>=', since)
  if (p.tenantId !== undefined) return q.where('tenant_id', '=', p.tenantId).orderBy('finished_at', 'desc').limit(1).executeTakeFirst()
  const t = sql.table(`${p.schema}.job_history`)
  const window = since === undefined ? sql`true` : sql`finished_at >= ${since}`
  const r = await sql<Awaited<ReturnType<typeof q.executeTakeFirstOrThrow>>>`
    with recursive tenants(tenant_id) as (
      select min(tenant_id) from ${t} where ${window}
      union all
      select (select min(tenant_id) from ${t} where tenant_id > tenants.tenant_id and ${window}) from tenants where tenants.tenant_id is not null
    )
    select h.* from tenants cross join lateral (
      select * from ${t} where tenant_id = tenants.tenant_id and id = ${p.id}::uuid and ${window} limit 1
    ) h limit 1`.execute(db)
  return r.rows[0]
}
