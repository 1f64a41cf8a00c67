import type { Kysely } from 'kysely'
import type { Database } from '@pgqueue/core/internal'

/** Configured queues (settings rows), of one tenant or all, by tenant then queue. */
export async function queueSettingsList(db: Kysely<Database>, p: { schema: string; tenantId?: string; limit: number }) {
  let q = db.withSchema(p.schema).selectFrom('queues').select(['tenant_id', 'queue', 'paused', 'max_concurrency', 'retry_policy', 'display_name'])
  if (p.tenantId !== undefined) q = q.where('tenant_id', '=', p.tenantId)
  return q.orderBy('tenant_id').orderBy('queue').limit(p.limit).execute()
}

/** Live counts per (tenant, queue), for the operator's queue table; one pass over jobs_state_idx. */
export async function jobCountByTenantQueue(db: Kysely<Database>, p: { schema: string; tenantId?: string; limit: number }) {
  let q = db.withSchema(p.schema).selectFrom('jobs').select((eb) => [
    'tenant_id', 'queue',
    eb.fn.countAll<string>().filterWhere('state', 'in', ['pending', 'held']).as('pending'),
    eb.fn.countAll<string>().filterWhere('state', '=', 'held').as('held'),
    eb.fn.countAll<string>().filterWhere('state', '=', 'scheduled').as('scheduled'),
    eb.fn.countAll<string>().filterWhere('state', '=', 'running').as('running'),
  ])
  if (p.tenantId !== undefined) q = q.where('tenant_id', '=', p.tenantId)
  return q.groupBy(['tenant_id', 'queue']).orderBy('tenant_id').orderBy('queue').limit(p.limit).execute()
}
