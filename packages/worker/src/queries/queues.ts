import { quoteIdent, type Queryable } from '@pgqueue/core/internal'

/** The retry policies configured for (tenant, queue) pairs; pairs without one are absent. */
export async function queueRetryPolicyMany(
  db: Queryable,
  p: { schema: string; tenantIds: string[]; queues: string[] },
): Promise<Map<string, unknown>> {
  const s = quoteIdent(p.schema)
  const { rows } = await db.query<{ tenant_id: string; queue: string; retry_policy: unknown }>(
    `select q.tenant_id, q.queue, q.retry_policy from ${s}.queues q
       join unnest($1::text[], $2::text[]) as i(tenant_id, queue) on q.tenant_id = i.tenant_id and q.queue = i.queue
      where q.retry_policy is not null`,
    [p.tenantIds, p.queues],
  )
  return new Map(rows.map((r) => [`${r.tenant_id}\u0000${r.queue}`, r.retry_policy]))
}
