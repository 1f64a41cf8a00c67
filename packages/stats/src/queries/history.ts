import { sql, type Kysely, type RawBuilder } from 'kysely'
import { quoteIdent, type Database } from '@pgqueue/core/internal'
import type { HistogramBucket } from '../types.js'

/** Finished rows counted per outcome, as the completed, failed and cancelled columns of a grouped select. */
export const stateCounts = sql`(count(*) filter (where state = 'completed'))::int as completed,
             (count(*) filter (where state = 'failed'))::int as failed,
             (count(*) filter (where state = 'cancelled'))::int as cancelled`

function history(schema: string): RawBuilder<unknown> {
  return sql.raw(`${quoteIdent(schema)}.job_history`)
}

/** Completions of queues that keep no completed history (migration 0017): counted with history's rows. */
function counts(schema: string): RawBuilder<unknown> {
  return sql.raw(`${quoteIdent(schema)}.completion_counts`)
}

function scope(p: { tenantId?: string; queue?: string }): RawBuilder<unknown> {
  return sql`${p.tenantId === undefined ? sql`true` : sql`tenant_id = ${p.tenantId}`}
         and ${p.queue === undefined ? sql`true` : sql`queue = ${p.queue}`}`
}

/** Finished counts per queue, as the database returns them. */
export interface HistoryCountRow {
  queue: string
  completed: number
  failed: number
  cancelled: number
  failed_last_24h: number
  last_failure_at: Date | null
}

/**
 * Finished counts per queue since `since`, failures since `dayAgo` and the latest failure. One scan of
 * the rows finished since min(since, dayAgo). The bounds are parameters, not now() expressions, on
 * purpose: with constants the planner prunes the partitions outside the range at plan time (it then
 * neither opens nor plans them, which saves most of the planning time with 30+ partitions) and
 * estimates the row count from the statistics instead of guessing a third of the table. Within a
 * tenant the (tenant_id, queue, finished_at desc) index narrows further.
 */
export async function historyCountByQueue(
  db: Kysely<Database>,
  p: { schema: string; tenantId?: string; queue?: string; since: Date; dayAgo: Date },
): Promise<HistoryCountRow[]> {
  const { schema } = p
  const early = p.since < p.dayAgo ? p.since : p.dayAgo
  const { rows } = await sql<HistoryCountRow>`
    select queue, sum(completed)::int as completed, sum(failed)::int as failed, sum(cancelled)::int as cancelled,
           sum(failed_last_24h)::int as failed_last_24h, max(last_failure_at) as last_failure_at from (
      select queue,
             count(*) filter (where state = 'completed' and finished_at >= ${p.since}) as completed,
             count(*) filter (where state = 'failed' and finished_at >= ${p.since}) as failed,
             count(*) filter (where state = 'cancelled' and finished_at >= ${p.since}) as cancelled,
             count(*) filter (where state = 'failed' and finished_at >= ${p.dayAgo}) as failed_last_24h,
             max(finished_at) filter (where state = 'failed') as last_failure_at
        from ${history(schema)}
       where ${scope(p)}
         and finished_at >= ${early}
       group by queue
      union all
      select queue, coalesce(sum(completed) filter (where finished_at >= ${p.since}), 0), 0, 0, 0, null
        from ${counts(schema)}
       where ${scope(p)}
         and finished_at >= ${early}
       group by queue
    ) parts
     group by queue`.execute(db)
  return rows
}

/**
 * The closing select of a histogram: every bucket of [from, to) in `timezone` (local wall time, where
 * stepping by a day is exact across DST changes), joined to the CTE `counts` (b, completed, failed,
 * cancelled) so empty buckets come out as zeros.
 */
export function bucketsFilled(p: { from: Date; to: Date; bucket: HistogramBucket; timezone: string }): RawBuilder<unknown> {
  const step = sql.lit(`1 ${p.bucket}`)
  const unit = sql.lit(p.bucket)
  return sql`
    select s.b at time zone ${p.timezone} as at,
           coalesce(c.completed, 0) as completed, coalesce(c.failed, 0) as failed, coalesce(c.cancelled, 0) as cancelled
      from generate_series(date_trunc(${unit}, ${p.from}::timestamptz at time zone ${p.timezone}),
                           ${p.to}::timestamptz at time zone ${p.timezone}, ${step}::interval) as s(b)
      left join counts c on c.b = s.b
     where s.b < ${p.to}::timestamptz at time zone ${p.timezone}
     order by s.b`
}

/** One histogram bucket, as the database returns it. */
export interface HistogramRow {
  at: Date
  completed: number
  failed: number
  cancelled: number
}

/**
 * Finished jobs per bucket over [from, to), every bucket present (generate_series fills the gaps with
 * zeros). Buckets align to `timezone`: the work is done in local wall time (timestamp without time
 * zone), where stepping by a day is exact across DST changes, and converted back for the output.
 * The bound on finished_at prunes partitions outside the range.
 */
export async function historyHistogram(
  db: Kysely<Database>,
  p: { schema: string; tenantId?: string; queue?: string; from: Date; to: Date; bucket: HistogramBucket; timezone: string; states: string[] },
): Promise<HistogramRow[]> {
  const { schema } = p
  const unit = sql.lit(p.bucket)
  const { rows } = await sql<HistogramRow>`
    with parts as (
      select date_trunc(${unit}, finished_at at time zone ${p.timezone}) as b,
             ${stateCounts}
        from ${history(schema)}
       where ${scope(p)}
         and finished_at >= ${p.from} and finished_at < ${p.to}
         and state = any(${p.states}::text[])
       group by 1
      union all
      select date_trunc(${unit}, finished_at at time zone ${p.timezone}), sum(completed)::int, 0, 0
        from ${counts(schema)}
       where ${scope(p)}
         and finished_at >= ${p.from} and finished_at < ${p.to}
         and 'completed' = any(${p.states}::text[])
       group by 1
    ),
    counts as (
      select b, sum(completed)::int as completed, sum(failed)::int as failed, sum(cancelled)::int as cancelled from parts group by b
    )
    ${bucketsFilled(p)}`.execute(db)
  return rows
}

/** Latency percentiles per queue, as the database returns them. */
export interface LatencyRow {
  queue: string
  count: number
  wait: number[]
  run: number[]
}

/**
 * p50/p95/p99 of wait (run_at to started_at) and run (started_at to finished_at) per queue over jobs
 * that ran and finished since `since` (a parameter, so partitions are pruned at plan time; see
 * historyCountByQueue). percentile_cont sorts the window's rows, so the cost grows with the rows
 * finished in the window, not with all of history.
 */
export async function historyLatencyByQueue(
  db: Kysely<Database>,
  p: { schema: string; tenantId?: string; queue?: string; since: Date },
): Promise<LatencyRow[]> {
  const { schema } = p
  const { rows } = await sql<LatencyRow>`
    select queue, count(*)::int as count,
           percentile_cont(array[0.5, 0.95, 0.99]::float8[]) within group (
             order by greatest(extract(epoch from started_at - run_at), 0) * 1000) as wait,
           percentile_cont(array[0.5, 0.95, 0.99]::float8[]) within group (
             order by greatest(extract(epoch from finished_at - started_at), 0) * 1000) as run
      from ${history(schema)}
     where ${scope(p)}
       and finished_at >= ${p.since}
       and state in ('completed', 'failed') and started_at is not null
     group by queue
     order by queue`.execute(db)
  return rows
}

/** Queues with completion_counts rows since `since` (completions kept out of history, see migration 0017). */
export async function completionCountQueues(
  db: Kysely<Database>,
  p: { schema: string; tenantId?: string; queue?: string; since: Date },
): Promise<string[]> {
  const { rows } = await sql<{ queue: string }>`
    select distinct queue from ${counts(p.schema)} where ${scope(p)} and finished_at >= ${p.since}`.execute(db)
  return rows.map((r) => r.queue)
}

/**
 * completion_counts' latency buckets as (queue, i, wait, run) rows, one per bucket of each row (not yet
 * summed), for the rows of `c` that `where` keeps.
 */
export function countedBuckets(schema: string, where: RawBuilder<unknown>): RawBuilder<unknown> {
  return sql`
      select c.queue, b::int as i, count(*)::int as wait, 0 as run from ${counts(schema)} c, unnest(c.wait_buckets) b where ${where} group by 1, 2
      union all
      select c.queue, b::int, 0, count(*)::int from ${counts(schema)} c, unnest(c.run_buckets) b where ${where} group by 1, 2`
}

/** One latency bucket of a queue: how many waits and runs fell in it (latency_bucket() index i). */
export interface LatencyBucketRow {
  queue: string
  i: number
  wait: number
  run: number
}

/**
 * Latency histograms of `queues` since `since`: history's completed and failed rows that started, put
 * in latency_bucket()s, plus completion_counts' buckets. For queues whose completions are partly
 * counted only as histograms, percentiles come from these buckets (see Stats.latency()).
 */
export async function historyLatencyBucketsRaw(
  db: Kysely<Database>,
  p: { schema: string; tenantId?: string; queues: string[]; since: Date },
): Promise<LatencyBucketRow[]> {
  const s = sql.raw(quoteIdent(p.schema))
  const tenant = p.tenantId === undefined ? sql`true` : sql`tenant_id = ${p.tenantId}`
  const { rows } = await sql<LatencyBucketRow>`
    with raw as materialized (
      select queue,
             ${s}.latency_bucket(greatest(extract(epoch from started_at - run_at) * 1000, 0)::float8) as wi,
             ${s}.latency_bucket(greatest(extract(epoch from finished_at - started_at) * 1000, 0)::float8) as ri,
             count(*)::int as n
        from ${history(p.schema)}
       where ${tenant} and queue = any(${p.queues}::text[]) and finished_at >= ${p.since}
         and state in ('completed', 'failed') and started_at is not null
       group by 1, 2, 3
    ),
    parts as (
      select queue, wi as i, n as wait, 0 as run from raw
      union all
      select queue, ri, 0, n from raw
      union all
      ${countedBuckets(p.schema, sql`${tenant} and c.queue = any(${p.queues}::text[]) and c.finished_at >= ${p.since}`)}
    )
    select queue, i, sum(wait)::int as wait, sum(run)::int as run from parts group by 1, 2`.execute(db)
  return rows
}
