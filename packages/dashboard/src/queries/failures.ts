import { sql, type Kysely } from 'kysely'
import type { Database } from '@pgqueue/core/internal'

/** One group of failures sharing an error message. */
export interface FailureGroupRow {
  message: string
  /** Failed jobs in history within the window (among those read, see FailureGroups). */
  failed: number
  /** Live jobs waiting for a retry whose last error has this message (among those read). */
  retrying: number
  tenants: number
  queues: string[]
  last_at: Date
}

/** The groups, and whether either part stopped at the budget (the counts then cover only the newest rows). */
export interface FailureGroups {
  rows: FailureGroupRow[]
  historyHit: boolean
  liveHit: boolean
}

/**
 * How many failed history entries, and how many live jobs waiting for a retry, the failures page groups
 * at most (the newest of each). A setting object so tests can lower it.
 */
export const failureBudget = { rows: 5_000 }

/**
 * Runs `fn` with the planner told to walk the failed-only indexes newest first. It estimates a tenant's
 * failures as its share of rows times the failed share, so for a tenant whose jobs mostly fail it chose
 * to read every failure of the window by bitmap scan and sort them, rather than stop after the newest
 * (see apps/bench/LOG.md); the bulk cancel's message filter fooled it the same way. The settings are
 * local to the transaction and put back after.
 */
async function orderedScans<T>(db: Kysely<Database>, fn: () => Promise<T>): Promise<T> {
  const r = await sql<{ b: string; s: string }>`
    select current_setting('enable_bitmapscan') as b, current_setting('enable_sort') as s,
           set_config('enable_bitmapscan', 'off', true), set_config('enable_sort', 'off', true)`.execute(db)
  const result = await fn()
  await sql`select set_config('enable_bitmapscan', ${r.rows[0]!.b}, true), set_config('enable_sort', ${r.rows[0]!.s}, true)`.execute(db)
  return result
}

/**
 * The newest failed history entries since `since` and the newest live jobs carrying a last error, at
 * most `budget` of each, grouped by the error's message. Both come newest first from partial indexes
 * that hold only failed (job_history_failed_idx, or job_history_tenant_failed_idx for one tenant) or
 * retried jobs (jobs_retrying_idx), so a page reads about `budget` rows of each, whatever the window.
 */
export async function failureGroupList(
  db: Kysely<Database>,
  p: { schema: string; tenantId?: string; since: Date; limit: number; budget?: number },
): Promise<FailureGroups> {
  const scope = p.tenantId === undefined ? sql`true` : sql`tenant_id = ${p.tenantId}`
  const budget = p.budget ?? failureBudget.rows
  const r = await orderedScans(db, () => sql<FailureGroupRow & { history_read: number; live_read: number }>`
    with h as (
      select tenant_id, queue, coalesce(error->>'message', '') as message, finished_at as at
        from ${sql.table(`${p.schema}.job_history`)}
       where ${scope} and state = 'failed' and finished_at >= ${p.since}
       order by finished_at desc limit ${budget}
    ), l as (
      select tenant_id, queue, coalesce(last_error->>'message', '') as message, updated_at as at
        from ${sql.table(`${p.schema}.jobs`)}
       where ${scope} and last_error is not null and state <> 'running'
       order by id desc limit ${budget}
    ), f as (
      select tenant_id, queue, message, at, 1 as failed, 0 as retrying from h
      union all
      select tenant_id, queue, message, at, 0, 1 from l
    )
    select message, sum(failed)::int as failed, sum(retrying)::int as retrying, count(distinct tenant_id)::int as tenants,
           (array_agg(distinct queue))[1:5] as queues, max(at) as last_at,
           (select count(*) from h)::int as history_read, (select count(*) from l)::int as live_read
      from f group by message order by max(at) desc limit ${p.limit}`.execute(db))
  const first = r.rows[0]
  return {
    rows: r.rows.map(({ history_read: _h, live_read: _l, ...g }) => g),
    historyHit: first !== undefined && first.history_read >= budget,
    liveHit: first !== undefined && first.live_read >= budget,
  }
}

/**
 * Failed history entries with this message since `since`, not retried yet (no live or finished job in the
 * window has retry_of = its id): what a bulk retry pushes again. The window's failures come newest first
 * from the failed-only indexes (all of them when the message is rare: a click, not a page), and each
 * is checked against the retry_of indexes of the live table and of history.
 */
export async function failureHistoryIds(
  db: Kysely<Database>,
  p: { schema: string; tenantId?: string; message: string; since: Date; limit: number },
): Promise<{ tenant_id: string; id: string }[]> {
  const scope = p.tenantId === undefined ? sql`true` : sql`tenant_id = ${p.tenantId}`
  const r = await orderedScans(db, () => sql<{ tenant_id: string; id: string }>`
    select tenant_id, id from ${sql.table(`${p.schema}.job_history`)}
     where ${scope} and state = 'failed' and finished_at >= ${p.since} and coalesce(error->>'message', '') = ${p.message}
       and not exists (select 1 from ${sql.table(`${p.schema}.jobs`)} j where j.tenant_id = job_history.tenant_id and j.retry_of = job_history.id)
       and not exists (select 1 from ${sql.table(`${p.schema}.job_history`)} r
                        where r.finished_at >= ${p.since} and r.tenant_id = job_history.tenant_id and r.retry_of = job_history.id)
     order by finished_at desc limit ${p.limit}`.execute(db))
  return r.rows
}

/** Live jobs waiting for a retry whose last error has this message: what a bulk cancel cancels (read through jobs_retrying_idx). */
export async function failureLiveIds(db: Kysely<Database>, p: { schema: string; tenantId?: string; message: string; limit: number }): Promise<{ tenant_id: string; id: string }[]> {
  const scope = p.tenantId === undefined ? sql`true` : sql`tenant_id = ${p.tenantId}`
  const r = await orderedScans(db, () => sql<{ tenant_id: string; id: string }>`
    select tenant_id, id from ${sql.table(`${p.schema}.jobs`)}
     where ${scope} and last_error is not null and state <> 'running' and coalesce(last_error->>'message', '') = ${p.message}
     order by id limit ${p.limit}`.execute(db))
  return r.rows
}
