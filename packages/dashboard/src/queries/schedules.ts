import type { Kysely } from 'kysely'
import type { Database } from '@pgqueue/core/internal'

/** Schedules, of one tenant or all, next due first (paused ones last). */
export async function scheduleList(db: Kysely<Database>, p: { schema: string; tenantId?: string; limit: number }) {
  let q = db.withSchema(p.schema).selectFrom('schedules')
    .select(['tenant_id', 'id', 'key', 'queue', 'type', 'cron', 'timezone', 'every_ms', 'paused', 'next_run_at', 'last_run_at', 'missed_policy'])
  if (p.tenantId !== undefined) q = q.where('tenant_id', '=', p.tenantId)
  return q.orderBy('paused').orderBy('next_run_at').orderBy('tenant_id').orderBy('key').limit(p.limit).execute()
}
