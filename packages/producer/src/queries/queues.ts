import { sql, type Kysely } from 'kysely'
import type { Database } from '@pgqueue/core/internal'

/** A queues row. */
export interface QueueRow {
  tenant_id: string
  queue: string
  paused: boolean
  max_concurrency: number | null
  retry_policy: unknown
  display_name: string | null
  keep_completed: boolean
  created_at: Date
  updated_at: Date
}

/** The columns configureQueue() may change; an absent field keeps its value. */
export interface QueueChanges {
  paused?: boolean
  max_concurrency?: number | null
  retry_policy?: string | null
  display_name?: string | null
  keep_completed?: boolean
}

/** Creates or updates a (tenant, queue) settings row, touching only the given fields. */
export async function queueUpsert(db: Kysely<Database>, params: { schema: string; tenantId: string; queue: string; changes: QueueChanges }): Promise<QueueRow> {
  const { changes } = params
  return (await db.withSchema(params.schema).insertInto('queues')
    .values({ tenant_id: params.tenantId, queue: params.queue, ...changes })
    .onConflict((oc) => oc.columns(['tenant_id', 'queue']).doUpdateSet({ ...changes, updated_at: sql<Date>`now()` }))
    .returningAll()
    .executeTakeFirstOrThrow()) as QueueRow
}

/** A (tenant, queue) settings row, or undefined when never configured. */
export async function queueGet(db: Kysely<Database>, params: { schema: string; tenantId: string; queue: string }): Promise<QueueRow | undefined> {
  return (await db.withSchema(params.schema).selectFrom('queues').selectAll()
    .where('tenant_id', '=', params.tenantId).where('queue', '=', params.queue).executeTakeFirst()) as QueueRow | undefined
}

/** Configured queues of a tenant, by name, keyset on the name. */
export async function queueList(db: Kysely<Database>, params: { schema: string; tenantId: string; afterQueue?: string; limit: number }): Promise<QueueRow[]> {
  let q = db.withSchema(params.schema).selectFrom('queues').selectAll().where('tenant_id', '=', params.tenantId)
  if (params.afterQueue !== undefined) q = q.where('queue', '>', params.afterQueue)
  return (await q.orderBy('queue').limit(params.limit).execute()) as QueueRow[]
}
