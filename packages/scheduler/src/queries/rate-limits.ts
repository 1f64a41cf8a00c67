import { quoteIdent, type Queryable } from '@pgqueue/core/internal'

/** A token bucket as locked and refilled by this transaction. tenant_id '' is a queue-wide bucket. */
export interface BucketRow {
  tenant_id: string
  queue: string
  capacity: number
  rate: number
  tokens: number
  /** Cost of the bucket's released jobs pending now. */
  pending: number
}

/**
 * Locks the buckets of `keys` (pairs' own, and '' for queues' shared ones) until the transaction ends,
 * waiting for another releaser that holds one (briefly: a release transaction), in key order so two
 * Schedulers never deadlock; then refills them to now in a second statement, whose fresh snapshot sees
 * every release committed before the lock was granted. The refill is capped at capacity minus
 * `unclaimed`, the pending cost stored by the last release (see migration 18: this never credits more
 * than a bucket spent at claim time would, so the cost claimed in any window of w seconds stays within
 * capacity + rate * w, whatever the number of Workers and Schedulers). Also returns `pending`, the
 * bucket's released jobs still pending now (counted with a LIMIT of the capacity, so at most that many
 * index entries), for rateLimitTakeMany(). Time is the database's clock_timestamp(), never earlier
 * than the last refill. Returns the buckets that exist (a key may have been deleted meanwhile).
 */
export async function rateLimitRefillMany(db: Queryable, p: { schema: string; keys: { tenant_id: string; queue: string }[] }): Promise<BucketRow[]> {
  const s = quoteIdent(p.schema)
  const tenants = p.keys.map((k) => k.tenant_id)
  const queues = p.keys.map((k) => k.queue)
  await db.query(
    `select 1 from ${s}.rate_limits r join unnest($1::text[], $2::text[]) as i(tenant_id, queue)
        on r.tenant_id = i.tenant_id and r.queue = i.queue
      order by r.tenant_id, r.queue for update of r`,
    [tenants, queues],
  )
  const { rows } = await db.query<BucketRow>(
    `update ${s}.rate_limits r
        set tokens = greatest(0, least(r.capacity - r.unclaimed,
                                       r.tokens + r.rate * greatest(0, extract(epoch from clock_timestamp() - r.refilled_at)))),
            refilled_at = greatest(r.refilled_at, clock_timestamp())
       from unnest($1::text[], $2::text[]) as i(tenant_id, queue)
      where r.tenant_id = i.tenant_id and r.queue = i.queue
      returning r.tenant_id, r.queue, r.capacity, r.rate, r.tokens,
                (select coalesce(sum(least(x.cost, r.capacity)), 0) from (
                   select j.cost from ${s}.jobs j
                    where j.queue = r.queue and j.state = 'pending' and (r.tenant_id = '' or j.tenant_id = r.tenant_id)
                    limit r.capacity) x)::float8 as pending`,
    [tenants, queues],
  )
  return rows
}

/**
 * For every bucket this transaction has locked and refilled (rateLimitRefillMany()): takes the tokens
 * of the jobs released (0 for many) and stores what is now released and unclaimed (pending + taken).
 */
export async function rateLimitTakeMany(db: Queryable, p: { schema: string; taken: { tenant_id: string; queue: string; tokens: number; pending: number }[] }): Promise<void> {
  if (p.taken.length === 0) return
  await db.query(
    `update ${quoteIdent(p.schema)}.rate_limits r
        set tokens = greatest(0, r.tokens - i.tokens), unclaimed = i.pending + i.tokens
       from unnest($1::text[], $2::text[], $3::float8[], $4::float8[]) as i(tenant_id, queue, tokens, pending)
      where r.tenant_id = i.tenant_id and r.queue = i.queue`,
    [p.taken.map((t) => t.tenant_id), p.taken.map((t) => t.queue), p.taken.map((t) => t.tokens), p.taken.map((t) => t.pending)],
  )
}
