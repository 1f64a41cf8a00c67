import type { Queryable } from './jobs.js'

/**
 * Takes transaction-scoped advisory locks on (tenant, queue) pairs without waiting and returns the
 * pairs obtained. Transaction-scoped, so it is safe behind PgBouncer in transaction mode; it only
 * serialises releases of one pair between Schedulers (a cap must not be overshot by two releasing at
 * once). The key includes the schema, since advisory locks are database-wide.
 */
export async function queueTryLockMany(
  db: Queryable,
  p: { schema: string; tenantIds: string[]; queues: string[] },
): Promise<{ tenant_id: string; queue: string }[]> {
  const { rows } = await db.query<{ tenant_id: string; queue: string }>(
    `select tenant_id, queue from unnest($2::text[], $3::text[]) as i(tenant_id, queue)
      where pg_try_advisory_xact_lock(hashtextextended($1 || chr(31) || tenant_id || chr(31) || queue, 7243))`,
    [p.schema, p.tenantIds, p.queues],
  )
  return rows
}
