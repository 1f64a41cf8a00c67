import { quoteIdent, type Queryable } from '@pgqueue/core/internal'

/**
 * The retry policies of (tenant, queue) pairs: the tenant's own queue policy, else the operator's
 * default for the queue (queue_defaults); pairs with neither are absent.
 */
export async function queueRetryPolicyMany(
  db: Queryable,
  p: { schema: string; tenantIds: string[]; queues: string[] },
): Promise<Map<string, unknown>> {
  const s = quoteIdent(p.schema)
  const { rows } = await db.query<{ tenant_id: string; queue: string; retry_policy: unknown }>(
    `select i.tenant_id, i.queue, coalesce(q.retry_policy, d.retry_policy) as retry_policy
       from unnest($1::text[], $2::text[]) as i(tenant_id, queue)
       left join ${s}.queues q on q.tenant_id = i.tenant_id and q.queue = i.queue
       left join ${s}.queue_defaults d on d.queue = i.queue
      where coalesce(q.retry_policy, d.retry_policy) is not null`,
    [p.tenantIds, p.queues],
  )
  return new Map(rows.map((r) => [`${r.tenant_id}\u0000${r.queue}`, r.retry_policy]))
}
