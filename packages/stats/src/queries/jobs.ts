import { sql, type Kysely } from 'kysely'
import { LIVE_COUNTS_SQL, LIVE_DUE_SQL, quoteIdent, type Database } from '@pgqueue/core/internal'

/** Per-queue live counts, as the database returns them. */
export interface JobsCountRow {
  queue: string
  pending: number
  scheduled: number
  running: number
  retrying: number
  waiting: number
  oldest_pending_age_ms: number | null
}

/**
 * Live counts per queue, for one tenant (its rows through the primary key, tenant_id first) or for all.
 * Cost grows with the live rows counted (the tenant's, or all of them): counting is a scan, there is
 * no counter table, because a counter row updated by every push and claim would serialise the hot path.
 * Never selects vt (the user role may not read it).
 */
export async function jobsCountByQueue(db: Kysely<Database>, p: { schema: string; tenantId?: string; queue?: string }): Promise<JobsCountRow[]> {
  const { schema } = p
  const { rows } = await sql<JobsCountRow>`
    select queue, ${sql.raw(LIVE_COUNTS_SQL)},
           (extract(epoch from now() - min(run_at) filter (where ${sql.raw(LIVE_DUE_SQL)})) * 1000)::float8 as oldest_pending_age_ms
      from ${sql.raw(`${quoteIdent(schema)}.jobs`)}
     where ${p.tenantId === undefined ? sql`true` : sql`tenant_id = ${p.tenantId}`}
       and ${p.queue === undefined ? sql`true` : sql`queue = ${p.queue}`}
     group by queue`.execute(db)
  return rows
}
