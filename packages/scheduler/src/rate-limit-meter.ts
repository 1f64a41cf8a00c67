import type pg from 'pg'
import type { jobLockReleasable, Pair } from './queries/jobs.js'
import { rateLimitRefillMany, rateLimitTakeMany, type BucketRow } from './queries/rate-limits.js'

/** A held job the releaser has locked (see jobLockReleasable()). */
export type Releasable = Awaited<ReturnType<typeof jobLockReleasable>>[number]
/** A bucket locked and refilled by this transaction; `left` is what this round may still take. */
export type Bucket = BucketRow & { left: number }
/** Locked buckets by bucketKey(). */
export type Buckets = Map<string, Bucket>

/**
 * The rate-limit part of a release (migration 18): locks and refills the token buckets of the
 * rate-limited pairs the releaser visits, fits their held jobs to the tokens, and debits what was
 * released, all inside the releaser's transaction. Keeps, per queue with a shared bucket, where the
 * tenants' turns stopped and each tenant's token credit (rotation hints, bounded, per Scheduler).
 */
export class RateLimitMeter {
  /** Per queue with a shared bucket, the tenant whose turn came last; bounded, a rotation hint. */
  private sharedCursors = new Map<string, string>()
  /** Per queue with a shared bucket, each tenant's token credit (deficit round robin); a hint, bounded. */
  private sharedCredits = new Map<string, Map<string, number>>()

  constructor(private readonly schema: string) {}

  /**
   * Locks and refills the buckets of rate-limited pairs and of their queues (rateLimitRefillMany()),
   * keyed by bucketKey(); `left` is what this round may still take.
   */
  async refill(client: pg.PoolClient, pairs: Pair[]): Promise<Buckets> {
    const keys = new Map<string, Pair>()
    for (const p of pairs) {
      keys.set(bucketKey(p.tenant_id, p.queue), { tenant_id: p.tenant_id, queue: p.queue })
      keys.set(bucketKey('', p.queue), { tenant_id: '', queue: p.queue })
    }
    const rows = await rateLimitRefillMany(client, { schema: this.schema, keys: [...keys.values()] })
    return new Map(rows.map((b) => [bucketKey(b.tenant_id, b.queue), { ...b, left: b.tokens }]))
  }

  /**
   * Fits the locked held jobs of rate-limited pairs to their buckets: the pairs of a queue take turns
   * in their own release order, while the job's cost fits in its pair's bucket and in its queue's
   * shared one (a cost above a bucket's capacity counts as the capacity, or the job could never run).
   * Turns make a queue-wide bucket's tokens go round the tenants rather than to the first one visited,
   * in equal tokens (each turn credits one token; a job goes when its cost is covered); a turn the
   * shared bucket cannot pay ends the queue's round. A pair stops at its first
   * job that does not fit, keeping its order. Returns the jobs to stamp (unlimited pairs' untouched),
   * `take`, which debits the buckets for the pairs actually stamped (a pair whose clock was busy took
   * nothing), and the time until a kept-back pair's buckets hold a quarter of their capacity (at least
   * its next job's cost) again.
   */
  fit(client: pg.PoolClient, jobs: Releasable[], buckets: Buckets, limitedPairs: Pair[]): { jobs: Releasable[]; take: (skip: Set<string>) => Promise<void>; refillMs: number | undefined } {
    const schema = this.schema
    const key = bucketKey
    const isLimited = new Set(limitedPairs.map((p) => key(p.tenant_id, p.queue)))
    const out: Releasable[] = []
    const byQueue = new Map<string, Map<string, Releasable[]>>()
    for (const j of jobs) {
      if (!isLimited.has(key(j.tenantId, j.queue))) {
        out.push(j)
        continue
      }
      let pairs = byQueue.get(j.queue)
      if (!pairs) byQueue.set(j.queue, (pairs = new Map()))
      const list = pairs.get(j.tenantId)
      if (list) list.push(j)
      else pairs.set(j.tenantId, [j])
    }
    const takenBy = new Map<string, Releasable[]>()
    let refillMs: number | undefined
    const wait = (b: Bucket | undefined, cost: number) => {
      if (!b) return 0
      // A quarter of the capacity: the refill is capped at capacity minus what the last release left
      // unclaimed, so rounds must come well before a bucket could fill up, or refill time is lost.
      const need = Math.min(b.capacity, Math.max(Math.min(cost, b.capacity), b.capacity / 4))
      return Math.max(0, ((need - b.left) / b.rate) * 1000)
    }
    for (const [queue, pairs] of byQueue) {
      const shared = buckets.get(key('', queue))
      // Turns start after the tenant the queue's last round stopped at (a rotation hint, bounded).
      const after = this.sharedCursors.get(queue) ?? ''
      const all = [...pairs.entries()].map(([tenant, list]) => ({ tenant, list, at: 0, own: buckets.get(key(tenant, queue)) }))
      all.sort((a, b) => (a.tenant < b.tenant ? -1 : a.tenant > b.tenant ? 1 : 0))
      const from = all.findIndex((p) => p.tenant > after)
      let active = from <= 0 ? all : [...all.slice(from), ...all.slice(0, from)]
      let stopped = false
      let credits = this.sharedCredits.get(queue)
      if (!credits) this.sharedCredits.set(queue, (credits = new Map()))
      if (credits.size > 10_000) credits.clear()
      while (active.length > 0 && !stopped) {
        const next: typeof active = []
        for (const q of active) {
          const j = q.list[q.at]
          if (!j) continue
          const ownCost = q.own ? Math.min(j.cost, q.own.capacity) : 0
          const sharedCost = shared ? Math.min(j.cost, shared.capacity) : 0
          const ownShort = q.own !== undefined && q.own.left < ownCost
          const sharedShort = shared !== undefined && shared.left < sharedCost
          // A shared bucket is split in tokens, not jobs (deficit round robin): each turn gives the
          // tenant one token of credit, and a job goes when its cost is covered. So a tenant whose jobs
          // cost 3 gets a third of the jobs of one whose jobs cost 1, and the same tokens.
          // The credit never exceeds the next job's cost, and a turn the shared bucket cannot pay
          // earns none, so credit does not pile up while the bucket is dry.
          let credit = 0
          if (shared) {
            const have = (credits.get(q.tenant) ?? 0) + 1
            if (have < sharedCost && !ownShort) {
              credits.set(q.tenant, have)
              next.push(q)
              continue
            }
            credit = Math.min(have, sharedCost)
          }
          if (ownShort || sharedShort) {
            const ms = Math.max(wait(q.own, j.cost), wait(shared, j.cost))
            refillMs = refillMs === undefined ? ms : Math.min(refillMs, ms)
            // The shared bucket cannot pay this tenant's turn: nobody after it goes ahead (a costly
            // job would starve behind cheap ones), and the next round starts with it.
            if (sharedShort && !ownShort) {
              this.sharedCursors.set(queue, prevTenant(all, q.tenant))
              stopped = true
              break
            }
            continue
          }
          if (q.own) q.own.left -= ownCost
          if (shared) {
            shared.left -= sharedCost
            credits.set(q.tenant, credit - sharedCost)
          }
          out.push(j)
          const k = key(q.tenant, queue)
          takenBy.set(k, [...(takenBy.get(k) ?? []), j])
          q.at += 1
          next.push(q)
          if (shared) this.sharedCursors.set(queue, q.tenant)
        }
        active = next
      }
    }
    if (this.sharedCursors.size > 10_000) this.sharedCursors.clear()
    if (this.sharedCredits.size > 10_000) this.sharedCredits.clear()
    // A pair whose buckets could not pay one job locked none: it waits for a refill all the same.
    for (const p of limitedPairs) {
      if (affordable(buckets, p) > 0) continue
      const ms = Math.max(wait(buckets.get(key(p.tenant_id, p.queue)), 1), wait(buckets.get(key('', p.queue)), 1))
      refillMs = refillMs === undefined ? ms : Math.min(refillMs, ms)
    }
    const take = async (skip: Set<string>) => {
      // Every locked bucket is written: its `unclaimed` must be brought up to date even when it gave nothing.
      const debit = new Map([...buckets].map(([k, b]) => [k, { tenant_id: b.tenant_id, queue: b.queue, tokens: 0, pending: b.pending }]))
      const add = (tenant: string, queue: string, capacity: number, cost: number) => {
        const d = debit.get(key(tenant, queue))
        if (d) d.tokens += Math.min(cost, capacity)
      }
      for (const [k, list] of takenBy) {
        if (skip.has(k)) continue
        for (const j of list) {
          const own = buckets.get(k)
          if (own) add(j.tenantId, j.queue, own.capacity, j.cost)
          const shared = buckets.get(key('', j.queue))
          if (shared) add('', j.queue, shared.capacity, j.cost)
        }
      }
      await rateLimitTakeMany(client, { schema, taken: [...debit.values()] })
    }
    return { jobs: out, take, refillMs }
  }
}


/** The tenant before `tenant` in `pairs` (sorted), or '' for the first: a cursor that starts at `tenant`. */
function prevTenant(pairs: { tenant: string }[], tenant: string): string {
  const i = pairs.findIndex((p) => p.tenant === tenant)
  return i <= 0 ? '' : pairs[i - 1]!.tenant
}

export function bucketKey(tenant: string, queue: string): string {
  return `${tenant}\u0000${queue}`
}

/** How many jobs a pair's buckets (its own and its queue's) could pay at a cost of 1 each. */
export function affordable(buckets: Buckets, p: Pair): number {
  const own = buckets.get(bucketKey(p.tenant_id, p.queue))
  const shared = buckets.get(bucketKey('', p.queue))
  return Math.floor(Math.min(own ? own.tokens : Infinity, shared ? shared.tokens : Infinity, 1_000_000))
}
