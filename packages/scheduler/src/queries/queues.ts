import { quoteIdent } from '@pgqueue/core/internal'
import type { Queryable } from '@pgqueue/core/internal'
import type { Pair } from './jobs.js'

/**
 * Takes the (tenant, queue) pairs whose held jobs this transaction may release, without waiting, and
 * returns them. A pair with a queues row is taken by locking that row (FOR UPDATE SKIP LOCKED) until
 * the transaction ends: that serialises releases of one pair between Schedulers (a cap must not be
 * overshot by two releasing at once), and only roles that may update queues rows can take that lock,
 * unlike an advisory lock, which any login can take and hold. A pair whose row is locked elsewhere
 * (another Scheduler, or the tenant editing its queue) is skipped this round. A pair with no queues
 * row has no pause or cap to respect: it is returned without a lock (its held jobs are still taken
 * with SKIP LOCKED, so no job is released twice). `limited`: the pair has a token bucket of its own
 * or its queue's (rate_limits), so its release goes through rateLimitRefillMany().
 */
export async function queueLockForRelease(db: Queryable, p: { schema: string; pairs: Pair[] }): Promise<(Pair & { limited: boolean })[]> {
  const s = quoteIdent(p.schema)
  const { rows } = await db.query<Pair & { limited: boolean }>(
    `with input as (
       select * from unnest($1::text[], $2::text[]) as i(tenant_id, queue)
     ),
     locked as (
       select q.tenant_id, q.queue from ${s}.queues q
         join input i on i.tenant_id = q.tenant_id and i.queue = q.queue
        for update of q skip locked
     )
     select t.tenant_id, t.queue,
            exists (select 1 from ${s}.rate_limits r where r.queue = t.queue and r.tenant_id in (t.tenant_id, '')) as limited
       from (select tenant_id, queue from locked
             union all
             select i.tenant_id, i.queue from input i
              where not exists (select 1 from ${s}.queues q where q.tenant_id = i.tenant_id and q.queue = i.queue)) t`,
    [p.pairs.map((x) => x.tenant_id), p.pairs.map((x) => x.queue)],
  )
  return rows
}
