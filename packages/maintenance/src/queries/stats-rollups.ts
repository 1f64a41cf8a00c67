import { sql, type Kysely } from 'kysely'
import { quoteIdent, type Database } from '@pgqueue/core/internal'

/** The rollup state row, as the database returns it. */
export interface RollupStateRow {
  rolled_up_to: Date | null
  minutes_from: Date | null
}

/** Reads the single state row and locks it for the rest of the transaction. */
export async function rollupStateLock(trx: Kysely<Database>, p: { schema: string }): Promise<RollupStateRow> {
  const { schema } = p
  const { rows } = await sql<RollupStateRow>`
    select rolled_up_to, minutes_from from ${sql.raw(`${quoteIdent(schema)}.stats_rollup_state`)} for update`.execute(trx)
  return rows[0] ?? { rolled_up_to: null, minutes_from: null }
}

/** Moves the watermark (and where minute rows start) after a chunk was rolled up. */
export async function rollupStateAdvance(trx: Kysely<Database>, p: { schema: string; rolledUpTo: Date; minutesFrom: Date | null }): Promise<void> {
  const { schema } = p
  await sql`
    update ${sql.raw(`${quoteIdent(schema)}.stats_rollup_state`)}
       set rolled_up_to = ${p.rolledUpTo}, minutes_from = ${p.minutesFrom}, updated_at = now()`.execute(trx)
}

/**
 * Where a first rollup starts: the lower bound of the oldest history partition, or the oldest row of
 * the default partition when that is older (strays, or no partitions at all). Partition bounds avoid a
 * min(finished_at) over all of history, which no index serves. Null when history has neither.
 */
export async function historyOldestBound(trx: Kysely<Database>, p: { schema: string; oldestPartitionFrom: Date | null }): Promise<Date | null> {
  const { schema } = p
  const { rows } = await sql<{ at: Date | null }>`
    select least(${p.oldestPartitionFrom}::timestamptz, (select min(finished_at) from ${sql.raw(`${quoteIdent(schema)}.job_history_default`)})) as at`.execute(trx)
  return rows[0]?.at ?? null
}

/**
 * Summarizes the BRIN ranges of history that no summary covers yet (the pages appended since the last
 * summary), on every partition; returns how many ranges it summarized. A BRIN scan must read an
 * unsummarized range whole, so without this the rollup and the global raw reads would read every page
 * appended since autovacuum last visited the partition (never, on an installation without autovacuum).
 * Waits at most `lockTimeoutMs` for a partition's lock (a VACUUM holds the same one).
 */
export async function historyBrinSummarize(trx: Kysely<Database>, p: { schema: string; lockTimeoutMs: number }): Promise<number> {
  const { schema } = p
  await sql`select set_config('lock_timeout', ${`${p.lockTimeoutMs}ms`}, true)`.execute(trx)
  const { rows } = await sql<{ n: number }>`
    select coalesce(sum(brin_summarize_new_values(t.relid)), 0)::int as n
      from pg_partition_tree(${`${quoteIdent(schema)}.job_history_finished_brin`}::regclass) t
     where t.isleaf`.execute(trx)
  return rows[0]?.n ?? 0
}

/** Shared tail of the two rollup statements: counts and dense histograms per (bucket, queue), upserted. */
function upsertFromSource(schema: string, table: 'history_rollup_minutes' | 'history_rollup_hours') {
  return sql`
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
    insert into ${sql.raw(`${quoteIdent(schema)}.${table}`)} as r (bucket, queue, completed, failed, cancelled, last_failure_at, wait_hist, run_hist)
    select c.bucket, c.queue, c.completed, c.failed, c.cancelled, c.last_failure_at,
           coalesce(w.counts, '{}'), coalesce(u.counts, '{}')
      from counts c
      left join dense w on w.bucket = c.bucket and w.queue = c.queue and w.kind = 'wait'
      left join dense u on u.bucket = c.bucket and u.queue = c.queue and u.kind = 'run'
    on conflict (bucket, queue) do update
       set completed = excluded.completed, failed = excluded.failed, cancelled = excluded.cancelled,
           last_failure_at = excluded.last_failure_at, wait_hist = excluded.wait_hist, run_hist = excluded.run_hist`
}

/**
 * Completions of queues that keep no completed history (completion_counts, migration 0017) in
 * [from, to), as rows of the rollup's source: their counts as completed rows, their latency buckets
 * as bucket rows with no state (which the counts ignore).
 */
function countedSource(s: string, unit: 'minute' | 'hour', from: Date, to: Date) {
  const c = sql.raw(`${s}.completion_counts`)
  return sql`
      select date_trunc(${unit}, finished_at, 'UTC'), queue, 'completed', null::int, null::int, sum(completed)::int, null::timestamptz
        from ${c} where finished_at >= ${from} and finished_at < ${to} group by 1, 2
      union all
      select date_trunc(${unit}, c.finished_at, 'UTC'), c.queue, null, b::int, null, count(*)::int, null
        from ${c} c, unnest(c.wait_buckets) b
       where c.finished_at >= ${from} and c.finished_at < ${to} group by 1, 2, 4
      union all
      select date_trunc(${unit}, c.finished_at, 'UTC'), c.queue, null, null, b::int, count(*)::int, null
        from ${c} c, unnest(c.run_buckets) b
       where c.finished_at >= ${from} and c.finished_at < ${to} group by 1, 2, 5`
}

/**
 * Aggregates history rows finished in [from, to) into `table` (minute or hour rows, UTC buckets), all
 * tenants together, replacing the rows of those buckets: the caller passes whole buckets (the last one
 * may end at the watermark), so a bucket is always recomputed from all of its rows and a rerun can
 * never count a row twice. Latency counts only completed and failed rows that started, like Stats'
 * raw path; the histograms are dense int4[] indexed by latency_bucket() + 1, trailing zeros left off.
 * Completions kept out of history (completion_counts) are added (countedSource()).
 * One pass over the range: the bounds are parameters, so only the partitions of [from, to) are read,
 * and within them only the block ranges job_history_finished_brin places in the range (history is
 * appended in finished_at order), so a run costs what was added since the last one.
 */
export async function historyRollupUpsert(
  trx: Kysely<Database>,
  p: { schema: string; table: 'history_rollup_minutes' | 'history_rollup_hours'; unit: 'minute' | 'hour'; from: Date; to: Date },
): Promise<number> {
  const { schema } = p
  const s = quoteIdent(schema)
  const ran = sql`state in ('completed', 'failed') and started_at is not null`
  const res = await sql`
    with src as (
      select date_trunc(${p.unit}, finished_at, 'UTC') as bucket, queue, state,
             case when ${ran} then ${sql.raw(s)}.latency_bucket(greatest(extract(epoch from started_at - run_at) * 1000, 0)::float8) end as wb,
             case when ${ran} then ${sql.raw(s)}.latency_bucket(greatest(extract(epoch from finished_at - started_at) * 1000, 0)::float8) end as rb,
             count(*)::int as n, max(finished_at) as last_at
        from ${sql.raw(`${s}.job_history`)}
       where finished_at >= ${p.from} and finished_at < ${p.to}
       group by 1, 2, 3, 4, 5
      union all
      ${countedSource(s, p.unit, p.from, p.to)}
    ),
    ${upsertFromSource(schema, p.table)}`.execute(trx)
  return Number(res.numAffectedRows ?? 0n)
}

/**
 * Recomputes the hour rows of [from, to) from the minute rows (which must cover that range): a few
 * thousand small rows instead of every history row of the hour, which a run every minute would
 * otherwise read again and again. Histograms are summed element by element.
 */
export async function historyRollupHoursFromMinutes(trx: Kysely<Database>, p: { schema: string; from: Date; to: Date }): Promise<number> {
  const { schema } = p
  const s = quoteIdent(schema)
  const res = await sql`
    with m as (
      select date_trunc('hour', bucket, 'UTC') as bucket, queue, completed, failed, cancelled, last_failure_at, wait_hist, run_hist
        from ${sql.raw(`${s}.history_rollup_minutes`)}
       where bucket >= ${p.from} and bucket < ${p.to}
    ),
    src as (
      select bucket, queue, 'completed' as state, null::int as wb, null::int as rb, sum(completed)::int as n, null::timestamptz as last_at from m group by 1, 2
      union all
      select bucket, queue, 'failed', null, null, sum(failed)::int, max(last_failure_at) from m group by 1, 2
      union all
      select bucket, queue, 'cancelled', null, null, sum(cancelled)::int, null from m group by 1, 2
      union all
      select m.bucket, m.queue, null, (u.ord - 1)::int, null, sum(u.n)::int, null from m, unnest(m.wait_hist) with ordinality u(n, ord) group by 1, 2, 4
      union all
      select m.bucket, m.queue, null, null, (u.ord - 1)::int, sum(u.n)::int, null from m, unnest(m.run_hist) with ordinality u(n, ord) group by 1, 2, 5
    ),
    ${upsertFromSource(schema, 'history_rollup_hours')}`.execute(trx)
  return Number(res.numAffectedRows ?? 0n)
}

/** Deletes minute rows before `minutesBefore` and hour rows before `hoursBefore`; returns how many went. */
export async function historyRollupExpiredDelete(trx: Kysely<Database>, p: { schema: string; minutesBefore: Date; hoursBefore: Date }): Promise<number> {
  const { schema } = p
  const s = quoteIdent(schema)
  const { rows } = await sql<{ n: number }>`
    with m as (delete from ${sql.raw(`${s}.history_rollup_minutes`)} where bucket < ${p.minutesBefore} returning 1),
         h as (delete from ${sql.raw(`${s}.history_rollup_hours`)} where bucket < ${p.hoursBefore} returning 1),
         st as (update ${sql.raw(`${s}.stats_rollup_state`)} set minutes_from = greatest(minutes_from, ${p.minutesBefore}::timestamptz)
                 where minutes_from is not null)
    select ((select count(*) from m) + (select count(*) from h))::int as n`.execute(trx)
  return rows[0]?.n ?? 0
}
