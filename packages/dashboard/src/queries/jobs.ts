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
 * Rows of the jobs table (or of history) a listing reads per page at most, over all tenants. The PK
 * range of a tenant comes in key order, but state, queue, type, time and target are filters on it (no
 * index serves them in that order: an index on target would cost every push), so a filter that matches
 * few rows would read every row of every tenant. The page stops at this many rows read; the next page
 * goes on from the last row read, and the page says so.
 */
export const SCAN_BUDGET = 10_000
/** A tenant's share of the budget on the operator's lists never drops below this. */
const SCAN_BUDGET_MIN_PER_TENANT = 100

/** A page of a listing: its rows, the key to go on from (a row's key or the last row read), and whether the budget cut it short. */
export interface JobListPage {
  rows: JobListRow[]
  next: { id: string; finishedUs: string | null } | undefined
  /** The scan stopped at the budget before the page was full: older matches may follow on the next page. */
  budgetHit: boolean
}

type Raw = ReturnType<typeof sql.raw>
type Cond = ReturnType<typeof sql.join>

interface ScanRow extends JobListRow {
  hit: boolean
  rn: string
  b: number
  /** The row's key as text in list order (collation "C"). */
  k: string
  stop: string | null
  /** The highest key a stopped tenant's scan vouches for, if any (see pageOf). */
  floor: string | null
}

/**
 * One tenant's rows in key order from `range` on: each read row is numbered, and the scan keeps the rows
 * the filter matches plus the last row the budget allows (the boundary), up to `limit` + 1. The key
 * order follows the primary key (tenant_id, id) or (tenant_id, finished_at, id), so the scan is
 * pipelined and stops at the first of: a full page, the budget, the tenant's last row.
 */
function tenantScan(table: string, columns: Raw, key: Raw, tenant: ReturnType<typeof sql>, range: Cond, filter: Cond, order: Raw, budget: ReturnType<typeof sql>, limit: number) {
  // stop: this tenant's last row read when its scan stopped early (a full page or the budget).
  return sql`select x.*, case when (count(*) over () > ${limit} or max(rn) over () = b) and rn = max(rn) over () then k end as stop
      from (select * from (
        select ${columns}, (${filter}) as hit, row_number() over (order by ${order}) as rn, ${budget} as b, (${key}) collate "C" as k
          from ${sql.table(table)} where tenant_id = ${tenant} and ${range} order by ${order} limit ${budget}
      ) s where hit or rn = b limit ${limit + 1}) x`
}

/**
 * The page from the tenants' scans, newest first. A tenant whose scan stopped (a full page or the
 * budget) vouches only for keys down to its last row read; the floor is the highest of those, the page
 * keeps the matches at or above it, and the next page starts below it: nothing is skipped or shown
 * twice. Returns the page's matches (up to limit + 1) and the floor's row.
 */
function pageOf(scans: ReturnType<typeof sql>, limit: number) {
  return sql<ScanRow>`
    select * from (select z.*, max(stop) over () as floor from (${scans}) z) f
     where (hit and (floor is null or k >= floor)) or k = floor
    order by k desc limit ${limit + 2}`
}

function merge(rows: ScanRow[], limit: number): JobListPage {
  const floor = rows.find((r) => r.floor !== null && r.k === r.floor)
  const hits = rows.filter((r) => r.hit && (floor === undefined || r.k >= floor.k))
  const strip = ({ hit: _h, rn: _r, b: _b, k: _k, stop: _s, floor: _f, ...r }: ScanRow): JobListRow => r
  const page = hits.slice(0, limit).map(strip)
  const full = hits.length > limit
  const at = full ? page[page.length - 1] : floor
  return { rows: page, next: at ? { id: at.id, finishedUs: at.finished_us } : undefined, budgetHit: !full && floor !== undefined && Number(floor.rn) === floor.b }
}

/**
 * Every tenant's scan, found by a skip-scan of the primary key (one probe per tenant): the budget is
 * shared out between the tenants, so a page reads at most SCAN_BUDGET rows (or the minimum per tenant).
 */
function acrossTenants(table: string, columns: Raw, key: Raw, range: Cond, filter: Cond, order: Raw, limit: number) {
  const t = sql.table(table)
  return sql`
    with recursive tenants(tenant_id) as (
      select min(tenant_id) from ${t}
      union all
      select (select min(tenant_id) from ${t} where tenant_id > tenants.tenant_id) from tenants where tenants.tenant_id is not null
    ), budget as (
      select greatest(${SCAN_BUDGET_MIN_PER_TENANT}, ${SCAN_BUDGET} / greatest(1, count(tenant_id)))::int as b from tenants
    )
    select j.* from tenants cross join lateral (
      ${tenantScan(table, columns, key, sql`tenants.tenant_id`, range, filter, order, sql`(select b from budget)`, limit)}
    ) j`
}

const LIVE_KEY = sql.raw('id::text')
const HISTORY_KEY = sql.raw(`lpad(((extract(epoch from finished_at) * 1000000)::bigint)::text, 20, '0') || id::text`)

/**
 * Live jobs, newest first by id (UUIDv7: creation order), keyset on id. A tenant's page is a range of
 * the primary key (tenant_id, id); the operator's, across tenants, is acrossTenants(). Filters are read
 * under SCAN_BUDGET.
 */
export async function jobListLive(db: Kysely<Database>, p: JobFilter & { states?: JobState[]; beforeId?: string }): Promise<JobListPage> {
  const range = sql.join([p.beforeId === undefined ? sql`true` : sql`id < ${p.beforeId}::uuid`], sql` and `)
  const filter = conditions(p, 'created_at', p.states)
  const table = `${p.schema}.jobs`
  const order = sql.raw('id desc')
  const q = p.tenantId !== undefined
    ? tenantScan(table, LIST_LIVE, LIVE_KEY, sql`${p.tenantId}`, range, filter, order, sql`${SCAN_BUDGET}::int`, p.limit)
    : acrossTenants(table, LIST_LIVE, LIVE_KEY, range, filter, order, p.limit)
  return merge((await pageOf(q, p.limit).execute(db)).rows, p.limit)
}

/**
 * Finished jobs, most recently finished first; keyset on (finished_at, id) in microseconds. The time
 * range bounds finished_at, so only the history partitions it touches are read; a tenant's page follows
 * the primary key (tenant_id, finished_at, id) of each partition. Other filters are read under SCAN_BUDGET.
 */
export async function jobListHistory(
  db: Kysely<Database>,
  p: JobFilter & { states?: HistoryState[]; after?: { finishedUs: string; id: string } },
): Promise<JobListPage> {
  const after = p.after === undefined
    ? sql`true`
    : sql`(finished_at, id) < (timestamptz 'epoch' + ${p.after.finishedUs}::bigint * interval '1 microsecond', ${p.after.id}::uuid)`
  const window = sql.join([p.since === undefined ? sql`true` : sql`finished_at >= ${p.since}`, p.until === undefined ? sql`true` : sql`finished_at < ${p.until}`], sql` and `)
  // A queue is part of the range: job_history_tenant_queue_idx (tenant_id, queue, finished_at desc, id
  // desc) reads it in key order, so only the queue's rows count against the budget.
  const range = sql.join([window, after, p.queue === undefined ? sql`true` : sql`queue = ${p.queue}`], sql` and `)
  const { since: _since, until: _until, queue: _queue, ...rest } = p
  const filter = conditions(rest, 'finished_at', p.states)
  const table = `${p.schema}.job_history`
  const order = sql.raw('finished_at desc, id desc')
  const q = p.tenantId !== undefined
    ? tenantScan(table, LIST_HISTORY, HISTORY_KEY, sql`${p.tenantId}`, range, filter, order, sql`${SCAN_BUDGET}::int`, p.limit)
    : // The tenants come from every partition, not the window's: a probe with finished_at >= since walks
      // a tenant's older rows in the first partition of the window (14,000 buffers a page for 100
      // tenants against 3,400 without it); a tenant with nothing in the window costs one empty scan.
      acrossTenants(table, LIST_HISTORY, HISTORY_KEY, range, filter, order, p.limit)
  return merge((await pageOf(q, p.limit).execute(db)).rows, p.limit)
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
