import { sql, type Kysely, type RawBuilder } from 'kysely'
import { quoteIdent, type Database } from '@pgqueue/core/internal'
import type { HistogramBucket } from '../types.js'
import type { TimeRange, WindowPlan } from '../window-plan.js'
import { bucketsFilled, countedBuckets, stateCounts, type HistogramRow, type HistoryCountRow, type LatencyBucketRow } from './history.js'

/*
 * Global (all-tenant) window queries that read rollup rows for the rolled-up part of a window and raw
 * history only for the parts the plan (window-plan.ts) leaves raw: edge minutes and the tail after the
 * watermark. Raw parts are one range read each: the bounds are parameters (partitions outside them
 * are pruned) and job_history_finished_brin narrows each partition to the block ranges of the range.
 * Completions that queues keep out of history (completion_counts, migration 0017) are read over the
 * same raw ranges and added to the completed counts and latency histograms.
 */

function table(schema: string, name: string): RawBuilder<unknown> {
  return sql.raw(`${quoteIdent(schema)}.${name}`)
}

/** (col >= from and col < to) or ...; false when there are none. Bounds are parameters, for pruning. */
function inRanges(column: string, ranges: readonly TimeRange[]): RawBuilder<unknown> {
  if (ranges.length === 0) return sql`false`
  const col = sql.ref(column)
  return sql.join(
    ranges.map((r) => (r.to === null ? sql`(${col} >= ${r.from})` : sql`(${col} >= ${r.from} and ${col} < ${r.to})`)),
    sql` or `,
  )
}

/** The rollup rows of a plan: minute rows in its minute ranges, hour rows in its hour range. */
function rollupRows(schema: string, plan: WindowPlan, queue: string | undefined, columns: RawBuilder<unknown>): RawBuilder<unknown> {
  const q = queue === undefined ? sql`true` : sql`queue = ${queue}`
  return sql`
    select ${columns} from ${table(schema, 'history_rollup_minutes')} where ${q} and (${inRanges('bucket', plan.minutes)})
    union all
    select ${columns} from ${table(schema, 'history_rollup_hours')} where ${q} and (${inRanges('bucket', plan.hours ? [plan.hours] : [])})`
}

/** The raw part's filter: its time ranges, and the queue when one was asked for. */
function rawScope(plan: WindowPlan, queue: string | undefined): RawBuilder<unknown> {
  return sql`(${inRanges('finished_at', plan.raw)}) and ${queue === undefined ? sql`true` : sql`queue = ${queue}`}`
}

/** Finished counts per queue over a plan: rollup rows plus the raw parts. Queues with nothing are left out. */
export async function historyCountByQueueFromRollups(
  db: Kysely<Database>,
  p: { schema: string; queue?: string; plan: WindowPlan },
): Promise<Omit<HistoryCountRow, 'failed_last_24h'>[]> {
  const { schema } = p
  const { rows } = await sql<Omit<HistoryCountRow, 'failed_last_24h'>>`
    with parts as (
      select queue,
             ${stateCounts},
             max(finished_at) filter (where state = 'failed') as last_failure_at
        from ${table(schema, 'job_history')}
       where ${rawScope(p.plan, p.queue)}
       group by queue
      union all
      select queue, sum(completed)::int, 0, 0, null
        from ${table(schema, 'completion_counts')}
       where ${rawScope(p.plan, p.queue)}
       group by queue
      union all
      ${rollupRows(schema, p.plan, p.queue, sql`queue, completed, failed, cancelled, last_failure_at`)}
    )
    select queue, sum(completed)::int as completed, sum(failed)::int as failed, sum(cancelled)::int as cancelled,
           max(last_failure_at) as last_failure_at
      from parts group by queue`.execute(db)
  return rows
}

/**
 * Histogram over a plan, buckets in `timezone` like historyHistogram (gaps filled with zeros). Rollup
 * rows are placed by their start: exact when each falls inside one bucket, which holds for minute rows
 * always and for hour rows when the zone's offset is whole hours (the caller disallows hours otherwise).
 */
export async function historyHistogramFromRollups(
  db: Kysely<Database>,
  p: { schema: string; queue?: string; plan: WindowPlan; from: Date; to: Date; bucket: HistogramBucket; timezone: string; states: string[] },
): Promise<HistogramRow[]> {
  const { schema } = p
  const unit = sql.lit(p.bucket)
  const pick = (state: string) => sql`case when ${state} = any(${p.states}::text[]) then ${sql.ref(state)} else 0 end`
  const { rows } = await sql<HistogramRow>`
    with parts as (
      select date_trunc(${unit}, finished_at at time zone ${p.timezone}) as b,
             ${stateCounts}
        from ${table(schema, 'job_history')}
       where ${rawScope(p.plan, p.queue)} and state = any(${p.states}::text[])
       group by 1
      union all
      select date_trunc(${unit}, finished_at at time zone ${p.timezone}), sum(completed)::int, 0, 0
        from ${table(schema, 'completion_counts')}
       where ${rawScope(p.plan, p.queue)} and 'completed' = any(${p.states}::text[])
       group by 1
      union all
      select date_trunc(${unit}, bucket at time zone ${p.timezone}), completed, failed, cancelled from (
        ${rollupRows(schema, p.plan, p.queue, sql`bucket, ${pick('completed')} as completed, ${pick('failed')} as failed, ${pick('cancelled')} as cancelled`)}
      ) r
    ),
    counts as (
      select b, sum(completed)::int as completed, sum(failed)::int as failed, sum(cancelled)::int as cancelled from parts group by b
    )
    ${bucketsFilled(p)}`.execute(db)
  return rows
}

/**
 * Latency histograms per queue over a plan: the rollups' arrays summed element by element (one unnest
 * of both arrays side by side), plus the raw parts' durations put in the same buckets by
 * latency_bucket(). Only completed and failed jobs that started count, as in historyLatencyByQueue.
 */
export async function historyLatencyBucketsFromRollups(
  db: Kysely<Database>,
  p: { schema: string; queue?: string; plan: WindowPlan },
): Promise<LatencyBucketRow[]> {
  const { schema } = p
  const s = quoteIdent(schema)
  const { rows } = await sql<LatencyBucketRow>`
    with raw as materialized (
      select queue,
             ${sql.raw(s)}.latency_bucket(greatest(extract(epoch from started_at - run_at) * 1000, 0)::float8) as wi,
             ${sql.raw(s)}.latency_bucket(greatest(extract(epoch from finished_at - started_at) * 1000, 0)::float8) as ri,
             count(*)::int as n
        from ${table(schema, 'job_history')}
       where ${rawScope(p.plan, p.queue)} and state in ('completed', 'failed') and started_at is not null
       group by 1, 2, 3
    ),
    rolled as (${rollupRows(schema, p.plan, p.queue, sql`queue, wait_hist, run_hist`)}),
    parts as (
      select queue, wi as i, n as wait, 0 as run from raw
      union all
      select queue, ri, 0, n from raw
      union all
      select r.queue, (u.ord - 1)::int, coalesce(u.w, 0), coalesce(u.r, 0)
        from rolled r, unnest(r.wait_hist, r.run_hist) with ordinality u(w, r, ord)
      union all
      ${countedBuckets(schema, rawScope(p.plan, p.queue))}
    )
    select queue, i, sum(wait)::int as wait, sum(run)::int as run from parts group by 1, 2`.execute(db)
  return rows
}
