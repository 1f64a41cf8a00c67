import { sql, type Kysely } from 'kysely'
import { quoteIdent } from '@pgqueue/core'

/** The rollup state row, as the database returns it. */
export interface RollupStateRow {
  rolled_up_to: Date | null
  minutes_from: Date | null
}

/** Reads the single state row and locks it for the rest of the transaction. */
export async function rollupStateLock(trx: Kysely<any>, schema: string): Promise<RollupStateRow> {
  const { rows } = await sql<RollupStateRow>`
    select rolled_up_to, minutes_from from ${sql.raw(`${quoteIdent(schema)}.stats_rollup_state`)} for update`.execute(trx)
  return rows[0] ?? { rolled_up_to: null, minutes_from: null }
}

/** Moves the watermark (and where minute rows start) after a chunk was rolled up. */
export async function rollupStateAdvance(trx: Kysely<any>, schema: string, p: { rolledUpTo: Date; minutesFrom: Date | null }): Promise<void> {
  await sql`
    update ${sql.raw(`${quoteIdent(schema)}.stats_rollup_state`)}
       set rolled_up_to = ${p.rolledUpTo}, minutes_from = ${p.minutesFrom}, updated_at = now()`.execute(trx)
}

/**
 * Where a first rollup starts: the lower bound of the oldest history partition, or the oldest row of
 * the default partition when that is older (strays, or no partitions at all). Partition bounds avoid a
 * min(finished_at) over all of history, which no index serves. Null when history has neither.
 */
export async function historyOldestBound(trx: Kysely<any>, schema: string, p: { oldestPartitionFrom: Date | null }): Promise<Date | null> {
  const { rows } = await sql<{ at: Date | null }>`
    select least(${p.oldestPartitionFrom}::timestamptz, (select min(finished_at) from ${sql.raw(`${quoteIdent(schema)}.job_history_default`)})) as at`.execute(trx)
  return rows[0]?.at ?? null
}

/**
 * Aggregates history rows finished in [from, to) into `table` (minute or hour rows, UTC buckets), all
 * tenants together, replacing the rows of those buckets: the caller passes whole buckets (the last one
 * may end at the watermark), so a bucket is always recomputed from all of its rows and a rerun can
 * never count a row twice. Latency counts only completed and failed rows that started, like Stats'
 * raw path; the histograms are dense int4[] indexed by latency_bucket() + 1, trailing zeros left off.
 * The bounds are parameters, so only the partitions of [from, to) are read, and within them queue by
 * queue through job_history_finished_idx (queue, finished_at), the queues found by a skip scan: no
 * index leads with finished_at, and a scan of the whole current partition every minute would grow
 * with the day's volume instead of the minute's.
 */
export async function historyRollupUpsert(
  trx: Kysely<any>,
  schema: string,
  p: { table: 'history_rollup_minutes' | 'history_rollup_hours'; unit: 'minute' | 'hour'; from: Date; to: Date },
): Promise<number> {
  const s = quoteIdent(schema)
  const ran = sql`state in ('completed', 'failed') and started_at is not null`
  const h = sql.raw(`${s}.job_history`)
  const res = await sql`
    with recursive qs(q) as (
      select min(queue) from ${h}
      union all
      select (select min(queue) from ${h} where queue > qs.q) from qs where qs.q is not null
    ),
    src as (
      select qs.q as queue, x.*
        from qs cross join lateral (
          select date_trunc(${p.unit}, finished_at, 'UTC') as bucket, state,
                 case when ${ran} then ${sql.raw(s)}.latency_bucket(greatest(extract(epoch from started_at - run_at) * 1000, 0)::float8) end as wb,
                 case when ${ran} then ${sql.raw(s)}.latency_bucket(greatest(extract(epoch from finished_at - started_at) * 1000, 0)::float8) end as rb,
                 count(*)::int as n, max(finished_at) as last_at
            from ${h}
           where queue = qs.q and finished_at >= ${p.from} and finished_at < ${p.to}
           group by 1, 2, 3, 4
        ) x
       where qs.q is not null
    ),
    counts as (
      select bucket, queue,
             coalesce(sum(n) filter (where state = 'completed'), 0)::int as completed,
             coalesce(sum(n) filter (where state = 'failed'), 0)::int as failed,
             coalesce(sum(n) filter (where state = 'cancelled'), 0)::int as cancelled,
             max(last_at) filter (where state = 'failed') as last_failure_at
        from src group by 1, 2
    ),
    hist as (
      select bucket, queue, 'wait' as kind, wb as i, sum(n)::int as n from src where wb is not null group by 1, 2, 4
      union all
      select bucket, queue, 'run', rb, sum(n)::int from src where rb is not null group by 1, 2, 4
    ),
    dense as (
      select h.bucket, h.queue, h.kind, array_agg(coalesce(x.n, 0) order by g.i) as counts
        from (select bucket, queue, kind, max(i) as top from hist group by 1, 2, 3) h
       cross join lateral generate_series(0, h.top) g(i)
        left join hist x on x.bucket = h.bucket and x.queue = h.queue and x.kind = h.kind and x.i = g.i
       group by 1, 2, 3
    )
    insert into ${sql.raw(`${s}.${p.table}`)} as r (bucket, queue, completed, failed, cancelled, last_failure_at, wait_hist, run_hist)
    select c.bucket, c.queue, c.completed, c.failed, c.cancelled, c.last_failure_at,
           coalesce(w.counts, '{}'), coalesce(u.counts, '{}')
      from counts c
      left join dense w on w.bucket = c.bucket and w.queue = c.queue and w.kind = 'wait'
      left join dense u on u.bucket = c.bucket and u.queue = c.queue and u.kind = 'run'
    on conflict (bucket, queue) do update
       set completed = excluded.completed, failed = excluded.failed, cancelled = excluded.cancelled,
           last_failure_at = excluded.last_failure_at, wait_hist = excluded.wait_hist, run_hist = excluded.run_hist`.execute(trx)
  return Number(res.numAffectedRows ?? 0n)
}

/** Deletes minute rows before `minutesBefore` and hour rows before `hoursBefore`; returns how many went. */
export async function historyRollupExpiredDelete(trx: Kysely<any>, schema: string, p: { minutesBefore: Date; hoursBefore: Date }): Promise<number> {
  const s = quoteIdent(schema)
  const { rows } = await sql<{ n: number }>`
    with m as (delete from ${sql.raw(`${s}.history_rollup_minutes`)} where bucket < ${p.minutesBefore} returning 1),
         h as (delete from ${sql.raw(`${s}.history_rollup_hours`)} where bucket < ${p.hoursBefore} returning 1),
         st as (update ${sql.raw(`${s}.stats_rollup_state`)} set minutes_from = greatest(minutes_from, ${p.minutesBefore}::timestamptz)
                 where minutes_from is not null)
    select ((select count(*) from m) + (select count(*) from h))::int as n`.execute(trx)
  return rows[0]?.n ?? 0
}
