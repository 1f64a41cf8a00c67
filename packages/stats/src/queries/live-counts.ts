import { sql, type Kysely } from 'kysely'
import { quoteIdent, type Database } from '@pgqueue/core/internal'
import type { JobsCountRow } from './jobs.js'

/**
 * Live counts per queue from Maintenance's snapshot (all tenants), shaped like jobsCountByQueue's rows.
 * The oldest pending age is measured now, from the snapshot's oldest due run_at.
 */
export async function liveCountsByQueue(db: Kysely<Database>, p: { schema: string; queue?: string }): Promise<JobsCountRow[]> {
  const { schema } = p
  const { rows } = await sql<JobsCountRow>`
    select queue, pending, scheduled, running, retrying, waiting,
           (extract(epoch from now() - oldest_pending_run_at) * 1000)::float8 as oldest_pending_age_ms
      from ${sql.raw(`${quoteIdent(schema)}.live_counts`)}
     where ${p.queue === undefined ? sql`true` : sql`queue = ${p.queue}`}`.execute(db)
  return rows
}
