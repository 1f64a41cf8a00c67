import { sql, type Kysely, type Selectable, type Transaction } from 'kysely'
import type { Database, SchedulesTable } from '@pgqueue/core/internal'

/** A Kysely instance or transaction over a pgqueue schema. */
type Db = Kysely<Database> | Transaction<Database>

/** A due schedule as the runner claims it: the timing columns and the job template (core's row types). */
export type ClaimedScheduleRow = Pick<
  Selectable<SchedulesTable>,
  'tenant_id' | 'id' | 'key' | 'queue' | 'type' | 'cron' | 'timezone' | 'every_ms' | 'anchor_at' | 'payload' | 'payload_type' | 'priority' | 'retry_policy'
> & {
  /** Read as plain text: checkScheduleRow() validates what a row holds. */
  missed_policy: string
  /** The target as JSON text, passed back to push_jobs() unchanged. */
  target: string | null
  /** Due rows always have one. */
  next_run_at: Date
}

/** One job to push for a schedule; see schedulePushJobs(). */
export interface ScheduleJobInput {
  tenantId: string
  id: string
  scheduleId: string
  queue: string
  type: string
  payload: Buffer | null
  payloadType: string | null
  target: string | null
  priority: number
  /** null: push_jobs() takes it from the queue's policy, else 5. */
  maxAttempts: number | null
  /** JSON text or null. */
  retryPolicy: string | null
  /** JSON text of the send span's W3C carrier, stored with the job; undefined when not traced. */
  traceContext?: string | undefined
}

/** The new timing of one claimed schedule; see scheduleAdvance(). */
export interface ScheduleAdvanceInput {
  tenantId: string
  id: string
  nextRunAt: Date
  /** Set when the schedule fired; null leaves last_run_at as it was. */
  lastRunAt: Date | null
}

/**
 * How many unpaused schedules are due, counting no further than `limit`. One range scan of
 * schedules_due_idx that stops at `limit`, so an idle poll is a single index probe and a busy one
 * costs at most `limit` index entries, however many schedules and tenants exist.
 */
export async function scheduleCountDue(db: Db, params: { schema: string; now: Date; limit: number }): Promise<number> {
  const t = sql.id(params.schema, 'schedules')
  const { rows } = await sql<{ n: number }>`
    select count(*)::int as n from (
      select 1 from ${t} s where not s.paused and s.next_run_at <= ${params.now} limit ${params.limit}) d`.execute(db)
  return rows[0]?.n ?? 0
}

/**
 * Locks and returns up to `limit` due schedules, earliest first, whatever their tenant. Only used when
 * every due schedule fits in one batch (scheduleCountDue() said so), where round-robin has nothing to
 * share out and the skip-scan over tenants would be wasted work.
 *
 * Strategy: a plain FOR UPDATE SKIP LOCKED over schedules_due_idx; the re-check under the lock (see
 * scheduleClaimDue) keeps a due time from firing twice.
 */
export async function scheduleClaimAllDue(trx: Db, params: { schema: string; now: Date; limit: number }): Promise<ClaimedScheduleRow[]> {
  const t = sql.id(params.schema, 'schedules')
  const { rows } = await sql<ClaimedScheduleRow>`
    select s.tenant_id, s.id, s.key, s.queue, s.type, s.cron, s.timezone, s.every_ms, s.anchor_at,
           s.missed_policy, s.payload, s.payload_type, s.target::text as target, s.priority, s.retry_policy,
           s.next_run_at
      from ${t} s
     where not s.paused and s.next_run_at <= ${params.now}
     order by s.next_run_at
     limit ${params.limit}
     for update skip locked`.execute(trx)
  return rows
}

/**
 * The tenants that have due schedules, in tenant_id order, starting after `after` (exclusive) and,
 * when `upTo` is given, ending at it (inclusive); at most `limit` of them.
 *
 * Strategy: a recursive skip-scan over schedules_tenant_due_idx (tenant_id, next_run_at) where not
 * paused. Each step is one index descent to the first entry of the next tenant, and that entry holds
 * the tenant's earliest next_run_at (nulls sort last), so whether the tenant is due is known without
 * reading any other of its schedules. The cost is one descent per tenant visited, independent of how
 * many schedules a tenant has; the outer LIMIT stops the walk as soon as enough due tenants are
 * found. No rows are locked here: the claim does that.
 */
export async function scheduleDueTenants(
  db: Db,
  params: { schema: string; now: Date; after: string | null; upTo: string | null; limit: number },
): Promise<string[]> {
  const t = sql.id(params.schema, 'schedules')
  const upTo = params.upTo === null ? sql`` : sql`and s.tenant_id <= ${params.upTo}`
  const { rows } = await sql<{ tenant_id: string }>`
    with recursive walk as (
      (select s.tenant_id, s.next_run_at from ${t} s
        where not s.paused and s.tenant_id > ${params.after ?? ''} ${upTo}
        order by s.tenant_id, s.next_run_at limit 1)
      union all
      (select n.tenant_id, n.next_run_at from walk w cross join lateral (
         select s.tenant_id, s.next_run_at from ${t} s
          where not s.paused and s.tenant_id > w.tenant_id ${upTo}
          order by s.tenant_id, s.next_run_at limit 1) n)
    )
    select tenant_id from walk where next_run_at <= ${params.now} limit ${params.limit}`.execute(db)
  return rows.map((r) => r.tenant_id)
}

/**
 * Locks and returns the due schedules of the given tenants: at most `perTenant` of each, earliest
 * next_run_at first, in the order the tenants are given. Must run inside the transaction that then
 * pushes the jobs and advances the schedules.
 *
 * Strategy: FOR UPDATE SKIP LOCKED per tenant (a LATERAL subquery with its own LIMIT, served by
 * schedules_tenant_due_idx), so concurrent runners split a tenant's due schedules instead of waiting
 * on each other, and never both take one row. The due condition is re-checked on the newest row
 * version when a row is locked: a row another runner advanced and committed after this statement's
 * snapshot is no longer due and is dropped, so a due time is never fired twice.
 */
export async function scheduleClaimDue(
  trx: Db,
  params: { schema: string; now: Date; tenantIds: string[]; perTenant: number },
): Promise<ClaimedScheduleRow[]> {
  const t = sql.id(params.schema, 'schedules')
  // A tenant listed twice (the tenant walk wrapped around) would return the same rows twice: SKIP LOCKED
  // skips only rows locked by other transactions, not this one's.
  const tenantIds = [...new Set(params.tenantIds)]
  const { rows } = await sql<ClaimedScheduleRow>`
    select s.tenant_id, s.id, s.key, s.queue, s.type, s.cron, s.timezone, s.every_ms, s.anchor_at,
           s.missed_policy, s.payload, s.payload_type, s.target::text as target, s.priority, s.retry_policy,
           s.next_run_at
      from unnest(${tenantIds}::text[]) with ordinality as d(tenant_id, ord)
      cross join lateral (
        select * from ${t} x
         where x.tenant_id = d.tenant_id and not x.paused and x.next_run_at <= ${params.now}
         order by x.next_run_at
         limit ${params.perTenant}
         for update skip locked) s
     order by d.ord, s.next_run_at`.execute(trx)
  return rows
}

/**
 * Pushes the jobs of every tenant in the batch through push_jobs() (SECURITY DEFINER: it sets the
 * transaction's tenant and stamps the fair virtual time), in one statement. Returns how many jobs were
 * written.
 *
 * Strategy: the flat job list is grouped per tenant in SQL and push_jobs() is called once per tenant,
 * in tenant_id order under the database's collation. That order matters: push_jobs() locks each
 * (tenant, queue) fair clock until commit, and runners that lock clocks of several tenants in one
 * transaction must all take them in the same order, or two of them can deadlock. push_jobs() also
 * refuses a transaction already scoped to another tenant, so each call's tenant argument is an
 * expression that first clears pgqueue.tenant and sets the tenant's trace context (every job of a
 * tenant in one batch carries the same one; push_jobs() stores it and clears it): arguments are
 * evaluated before the call, once per tenant row. Jobs are due now (run_at null) and carry no key: a key would replace a waiting job,
 * merging two due times into one job.
 */
export async function schedulePushJobs(trx: Db, params: { schema: string; jobs: ScheduleJobInput[] }): Promise<number> {
  const j = params.jobs
  if (j.length === 0) return 0
  const fn = sql.id(params.schema, 'push_jobs')
  const { rows } = await sql<{ n: number }>`
    with input as (
      select * from unnest(
        ${j.map((x) => x.tenantId)}::text[], ${j.map((x) => x.id)}::uuid[], ${j.map((x) => x.queue)}::text[],
        ${j.map((x) => x.type)}::text[], ${j.map((x) => x.payload)}::bytea[], ${j.map((x) => x.payloadType)}::text[],
        ${j.map((x) => x.target)}::jsonb[], ${j.map((x) => x.priority)}::integer[], ${j.map((x) => x.maxAttempts)}::integer[],
        ${j.map((x) => x.retryPolicy)}::jsonb[], ${j.map((x) => x.scheduleId)}::uuid[],
        ${j.map((x) => x.traceContext ?? null)}::text[])
        with ordinality as i(tenant_id, id, queue, type, payload, payload_type, target, priority, max_attempts,
                             retry_policy, schedule_id, trace_context, ord)
    ),
    per_tenant as materialized (
      select tenant_id, array_agg(id order by ord) as ids, array_agg(queue order by ord) as queues,
             array_agg(type order by ord) as types, array_agg(payload order by ord) as payloads,
             array_agg(payload_type order by ord) as payload_types, array_agg(target order by ord) as targets,
             array_agg(priority order by ord) as priorities, array_agg(max_attempts order by ord) as max_attempts,
             array_agg(retry_policy order by ord) as retry_policies, array_agg(schedule_id order by ord) as schedule_ids,
             min(trace_context) as trace_context, count(*) as n
        from input group by tenant_id order by tenant_id
    ),
    pushed as materialized (
      select (select count(*) from ${fn}(
                case when set_config('pgqueue.tenant', '', true) = ''
                      and set_config('pgqueue.trace_context', coalesce(g.trace_context, ''), true) is not null
                     then g.tenant_id end,
                g.ids, g.queues, g.types, array_fill(null::text, array[g.n::int]), g.payloads, g.payload_types,
                g.targets, g.priorities, array_fill(null::timestamptz, array[g.n::int]), g.max_attempts,
                g.retry_policies, g.schedule_ids, array_fill(null::uuid, array[g.n::int]))) as n
        from per_tenant g
    )
    select coalesce(sum(n), 0)::int as n from pushed`.execute(trx)
  return rows[0]?.n ?? 0
}

/**
 * Writes the new next_run_at (and last_run_at for those that fired) of claimed schedules, in one
 * statement. Returns how many rows were updated. Runs in the claim's transaction, so the advance and
 * the pushed jobs commit together or not at all: that is what makes each due time fire exactly once.
 * updated_at is left alone: it records the owner's edits, not the runner's progress.
 */
export async function scheduleAdvance(trx: Db, params: { schema: string; rows: ScheduleAdvanceInput[] }): Promise<number> {
  if (params.rows.length === 0) return 0
  const t = sql.id(params.schema, 'schedules')
  const r = params.rows
  const result = await sql`
    update ${t} s
       set next_run_at = u.next_run_at, last_run_at = coalesce(u.last_run_at, s.last_run_at)
      from unnest(${r.map((x) => x.tenantId)}::text[], ${r.map((x) => x.id)}::uuid[],
                  ${r.map((x) => x.nextRunAt.toISOString())}::timestamptz[],
                  ${r.map((x) => x.lastRunAt?.toISOString() ?? null)}::timestamptz[])
           as u(tenant_id, id, next_run_at, last_run_at)
     where s.tenant_id = u.tenant_id and s.id = u.id`.execute(trx)
  return Number(result.numAffectedRows ?? 0n)
}
