import { sql, type Kysely } from 'kysely'
import type { Database } from '@pgqueue/core/internal'

/** Wait-time percentiles (run_at to started_at) of one tenant's finished runs. */
export interface TenantWaitRow {
  tenant_id: string
  count: number
  p50: number
  p95: number
  p99: number
}

/**
 * Wait-time percentiles per tenant over jobs finished since `since`: the fairness view (a starved tenant
 * shows a high p95 while the others stay low). Reads raw history of the window only (its partitions,
 * through the BRIN index on finished_at), so the overview keeps the window short.
 */
export async function historyWaitByTenant(db: Kysely<Database>, p: { schema: string; tenantId?: string; since: Date; limit: number }): Promise<TenantWaitRow[]> {
  const scope = p.tenantId === undefined ? sql`true` : sql`tenant_id = ${p.tenantId}`
  const r = await sql<TenantWaitRow>`
    select tenant_id, count(*)::int as count,
           percentile_cont(0.5) within group (order by w) as p50,
           percentile_cont(0.95) within group (order by w) as p95,
           percentile_cont(0.99) within group (order by w) as p99
      from (select tenant_id, greatest(0, extract(epoch from started_at - run_at) * 1000) as w
              from ${sql.table(`${p.schema}.job_history`)}
             where ${scope} and finished_at >= ${p.since} and started_at is not null and state <> 'cancelled') h
     group by tenant_id order by p95 desc, tenant_id limit ${p.limit}`.execute(db)
  return r.rows.map((x) => ({ ...x, p50: Number(x.p50), p95: Number(x.p95), p99: Number(x.p99) }))
}
