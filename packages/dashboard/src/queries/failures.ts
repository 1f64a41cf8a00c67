import { sql, type Kysely } from 'kysely'
import type { Database } from '@pgqueue/core/internal'

/** One group of failures sharing an error message. */
export interface FailureGroupRow {
  message: string
  /** Failed jobs in history within the window. */
  failed: number
  /** Live jobs waiting for a retry whose last error has this message. */
  retrying: number
  tenants: number
  queues: string[]
  last_at: Date
}

/**
 * Failed history entries since `since` and live jobs carrying a last error, grouped by the error's
 * message. The window bounds the history read to the partitions it touches; the live part reads only
 * rows with an error (retries), a small part of the table.
 */
export async function failureGroupList(db: Kysely<Database>, p: { schema: string; tenantId?: string; since: Date; limit: number }): Promise<FailureGroupRow[]> {
  const scope = p.tenantId === undefined ? sql`true` : sql`tenant_id = ${p.tenantId}`
  const r = await sql<FailureGroupRow>`
    with f as (
      select tenant_id, queue, coalesce(error->>'message', '') as message, finished_at as at, 1 as failed, 0 as retrying
        from ${sql.table(`${p.schema}.job_history`)}
       where ${scope} and state = 'failed' and finished_at >= ${p.since}
      union all
      select tenant_id, queue, coalesce(last_error->>'message', '') as message, updated_at as at, 0, 1
        from ${sql.table(`${p.schema}.jobs`)}
       where ${scope} and last_error is not null and state <> 'running'
    )
    select message, sum(failed)::int as failed, sum(retrying)::int as retrying, count(distinct tenant_id)::int as tenants,
           (array_agg(distinct queue))[1:5] as queues, max(at) as last_at
      from f group by message order by max(at) desc limit ${p.limit}`.execute(db)
  return r.rows
}

/**
 * Failed history entries with this message since `since`, not retried yet (no live or finished job in the
 * window has retry_of = its id): what a bulk retry pushes again. retry_of has no index, so this reads the
 * live table and the window's history once each (hash anti-joins): fine for a click, not for a page.
 */
export async function failureHistoryIds(
  db: Kysely<Database>,
  p: { schema: string; tenantId?: string; message: string; since: Date; limit: number },
): Promise<{ tenant_id: string; id: string }[]> {
  const scope = p.tenantId === undefined ? sql`true` : sql`tenant_id = ${p.tenantId}`
  const r = await sql<{ tenant_id: string; id: string }>`
    select tenant_id, id from ${sql.table(`${p.schema}.job_history`)}
     where ${scope} and state = 'failed' and finished_at >= ${p.since} and coalesce(error->>'message', '') = ${p.message}
       and not exists (select 1 from ${sql.table(`${p.schema}.jobs`)} j where j.tenant_id = job_history.tenant_id and j.retry_of = job_history.id)
       and not exists (select 1 from ${sql.table(`${p.schema}.job_history`)} r
                        where r.finished_at >= ${p.since} and r.tenant_id = job_history.tenant_id and r.retry_of = job_history.id)
     order by finished_at desc limit ${p.limit}`.execute(db)
  return r.rows
}

/** Live jobs waiting for a retry whose last error has this message: what a bulk cancel cancels. */
export async function failureLiveIds(db: Kysely<Database>, p: { schema: string; tenantId?: string; message: string; limit: number }): Promise<{ tenant_id: string; id: string }[]> {
  const scope = p.tenantId === undefined ? sql`true` : sql`tenant_id = ${p.tenantId}`
  const r = await sql<{ tenant_id: string; id: string }>`
    select tenant_id, id from ${sql.table(`${p.schema}.jobs`)}
     where ${scope} and last_error is not null and state <> 'running' and coalesce(last_error->>'message', '') = ${p.message}
     order by id limit ${p.limit}`.execute(db)
  return r.rows
}
