import { sql, type Kysely } from 'kysely'
import { quoteIdent, type Database } from '@pgqueue/core/internal'

/** Schedules per queue, as the database returns them. */
export interface SchedulesSummaryRow {
  queue: string
  total: number
  paused: number
  next_due_at: Date | null
  last_run_at: Date | null
}

/** Count, paused count, next due run and last run of schedules per queue (a tenant's, or all). */
export async function schedulesSummaryByQueue(db: Kysely<Database>, p: { schema: string; tenantId?: string }): Promise<SchedulesSummaryRow[]> {
  const { schema } = p
  const { rows } = await sql<SchedulesSummaryRow>`
    select queue, count(*)::int as total, (count(*) filter (where paused))::int as paused,
           min(next_run_at) filter (where not paused) as next_due_at, max(last_run_at) as last_run_at
      from ${sql.raw(`${quoteIdent(schema)}.schedules`)}
     where ${p.tenantId === undefined ? sql`true` : sql`tenant_id = ${p.tenantId}`}
     group by queue
     order by queue`.execute(db)
  return rows
}
