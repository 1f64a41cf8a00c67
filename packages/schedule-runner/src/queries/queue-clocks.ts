import { sql, type Kysely, type Transaction } from 'kysely'
import type { Database } from '@pgqueue/core/internal'

/** A Kysely instance or transaction over a pgqueue schema. */
type Db = Kysely<Database> | Transaction<Database>

/** A (tenant, queue) pair. */
export interface ClockPair {
  tenantId: string
  queue: string
}

/**
 * Takes the fair clocks of the given pairs for the rest of the transaction, without waiting, through
 * fair_clock_try_lock() (SECURITY DEFINER: the worker role writes no clock itself). Returns the pairs
 * it could not take: a producer's transaction that pushed into that queue is still open and holds the
 * clock. With every other clock taken here, the push_jobs() that follows never waits on one, so a
 * tenant's open transaction delays its own schedules only. Called in (tenant, queue) order, though
 * nothing waits, so two runners cannot deadlock either way.
 */
export async function queueClockTryLockMany(trx: Db, params: { schema: string; pairs: ClockPair[] }): Promise<ClockPair[]> {
  if (params.pairs.length === 0) return []
  const fn = sql.id(params.schema, 'fair_clock_try_lock')
  const { rows } = await sql<{ tenant_id: string; queue: string }>`
    select p.tenant_id, p.queue
      from (select tenant_id, queue from unnest(${params.pairs.map((p) => p.tenantId)}::text[], ${params.pairs.map((p) => p.queue)}::text[])
                   as i(tenant_id, queue)
             order by tenant_id, queue offset 0) p
     where not ${fn}(p.tenant_id, p.queue)`.execute(trx)
  return rows.map((r) => ({ tenantId: r.tenant_id, queue: r.queue }))
}
