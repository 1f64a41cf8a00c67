import { sql, type Kysely } from 'kysely'
import { LIVE_COUNTS_SQL, LIVE_DUE_SQL, quoteIdent } from '@pgqueue/core/internal'

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
  const { rows } = await sql<TenantQueueCountRow>`
    select tenant_id, queue, ${sql.raw(LIVE_COUNTS_SQL)},
           (extract(epoch from now() - min(run_at) filter (where ${sql.raw(LIVE_DUE_SQL)})) * 1000)::float8 as oldest_pending_age_ms
      from ${sql.raw(`${quoteIdent(schema)}.jobs`)}
     group by tenant_id, queue`.execute(db)
  return rows
}
