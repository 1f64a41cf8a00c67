import { sql, type Kysely } from 'kysely'
import { quoteIdent } from '@pgqueue/core/internal'

/** Live counts of one (tenant, queue), with the meanings of Stats.queues(). */
export interface TenantQueueCountRow {
  tenant_id: string
  queue: string
  /** Due and waiting: pending, held, and scheduled whose run_at has passed. */
  pending: number
  /** Waiting for a run_at ahead. */
  scheduled: number
  running: number
  /** Waiting after at least one attempt. */
  retrying: number
  /** Flow jobs waiting for their parents. */
  waiting: number
  oldest_pending_age_ms: number | null
}

/**
 * Live counts per (tenant, queue), for the opt-in tenant label. One pass over the live table: its cost
 * grows with the live rows (there is no per-tenant snapshot), which is why the label is opt-in and the
 * result is cached between scrapes.
 */
export async function jobsCountByTenantQueue(db: Kysely<any>, schema: string): Promise<TenantQueueCountRow[]> {
  const due = sql`(state in ('pending', 'held') or (state = 'scheduled' and run_at <= now()))`
  const { rows } = await sql<TenantQueueCountRow>`
    select tenant_id, queue,
           (count(*) filter (where ${due}))::int as pending,
           (count(*) filter (where state = 'scheduled' and run_at > now()))::int as scheduled,
           (count(*) filter (where state = 'running'))::int as running,
           (count(*) filter (where state <> 'running' and attempt > 0))::int as retrying,
           (count(*) filter (where state = 'waiting'))::int as waiting,
           (extract(epoch from now() - min(run_at) filter (where ${due})) * 1000)::float8 as oldest_pending_age_ms
      from ${sql.raw(`${quoteIdent(schema)}.jobs`)}
     group by tenant_id, queue`.execute(db)
  return rows
}
