import type pg from 'pg'
import { jobListHeldPairs, jobLockReleasable, jobNotify, jobStampPending, type Pair } from './queries/jobs.js'
import { queueLockForRelease } from './queries/queues.js'
import { rateLimitRefillMany, rateLimitTakeMany, type BucketRow } from './queries/rate-limits.js'
import { inTransaction, type TransactionTimeouts } from './transaction.js'

/** What one release pass did. */
export interface ReleaseResult {
  /** Held jobs moved into the fair order. */
  released: number
  /** Pairs holding jobs that were visited. */
  pairs: number
  /** True when jobs are still held after the pass (a worker finishing a capped job may make room soon). */
  holding: boolean
  /** True when the pass stopped at its pair limit or a pair's batch was full. */
  more: boolean
  /** Rate-limited pairs kept jobs back for want of tokens: ms until their buckets hold a batch again. */
  refillMs?: number
}

type Releasable = Awaited<ReturnType<typeof jobLockReleasable>>[number]
type Bucket = BucketRow & { left: number }
/** Locked buckets by bucketKey(). */
type Buckets = Map<string, Bucket>

/**
 * Releases held jobs of pairs that are no longer paused, up to their concurrency cap. Pairs are found
 * per tenant (see jobListHeldPairs()): up to `pairsPerRound` tenants from a rotating cursor, each with
 * an equal part of `pairsPerRound` pairs from its own rotating queue cursor, so the cost of a pass does
 * not grow with the number of tenants or queues, every tenant is visited each round while there are
 * fewer tenants holding jobs than `pairsPerRound`, and no tenant's paused queues push another's out.
 * Each pair is taken by locking its queues row with SKIP LOCKED (see queueLockForRelease()), so two
 * Schedulers never release the same pair's room twice, and a pair whose row or fair clock another
 * transaction holds is skipped until a later pass instead of stalling the others.
 */
export class HeldJobReleaser {
  private tenantCursor = ''
  /** Per tenant, the last queue visited when its part of a round was full; bounded, a rotation hint. */
  private queueCursors = new Map<string, string>()
  /** Per queue with a shared bucket, the tenant whose turn came last; bounded, a rotation hint. */
  private sharedCursors = new Map<string, string>()
  /** Per queue with a shared bucket, each tenant's token credit (deficit round robin); a hint, bounded. */
  private sharedCredits = new Map<string, Map<string, number>>()

  constructor(private readonly options: { schema: string; pairsPerRound: number; perPair: number; channel: string; timeouts: TransactionTimeouts }) {}

  async run(pool: pg.Pool): Promise<ReleaseResult> {
    const { schema, pairsPerRound, perPair, channel, timeouts } = this.options
    const list = (afterTenant: string) =>
      jobListHeldPairs(pool, { schema, afterTenant, afterQueues: this.queueCursors, tenants: pairsPerRound, pairs: pairsPerRound })
    let pairs = await list(this.tenantCursor)
    let tenants = new Set(pairs.map((p) => p.tenant_id))
    const wrapped = tenants.size < pairsPerRound && this.tenantCursor !== ''
    if (wrapped) {
      // Wrap around: the tenants before the cursor get their turn in the same pass.
      const head = (await list('')).filter((p) => !tenants.has(p.tenant_id))
      pairs = pairs.concat(head)
      tenants = new Set(pairs.map((p) => p.tenant_id))
    }
    const lastTenant = pairs[pairs.length - 1]?.tenant_id
    this.tenantCursor = !wrapped && tenants.size >= pairsPerRound && lastTenant !== undefined ? lastTenant : ''
    // A tenant that filled its part has more pairs: go on after its last one next time; else start over.
    const part = Math.max(1, Math.floor(pairsPerRound / Math.max(1, tenants.size)))
    const perTenant = new Map<string, string[]>()
    for (const p of pairs) perTenant.set(p.tenant_id, [...(perTenant.get(p.tenant_id) ?? []), p.queue])
    if (this.queueCursors.size > 10_000) this.queueCursors.clear()
    let fullTenant = false
    for (const [tenant, queues] of perTenant) {
      if (queues.length >= part) {
        this.queueCursors.set(tenant, queues[queues.length - 1]!)
        fullTenant = true
      } else {
        this.queueCursors.delete(tenant)
      }
    }
    if (pairs.length === 0) return { released: 0, pairs: 0, holding: false, more: false }
    return inTransaction(pool, timeouts, async (client) => {
      const locked = await queueLockForRelease(client, { schema, pairs })
      if (locked.length === 0) return { released: 0, pairs: pairs.length, holding: true, more: false }
      // Rate-limited pairs release only what their buckets hold (only they pay these statements): their
      // buckets are refilled first, so a dry one locks no held rows.
      const limited = locked.filter((p) => p.limited)
      const buckets = limited.length > 0 ? await this.refill(client, limited) : undefined
      const limits = buckets ? limited.map((p) => ({ tenantId: p.tenant_id, queue: p.queue, n: affordable(buckets, p) })) : undefined
      const lockedJobs = await jobLockReleasable(client, {
        schema, tenantIds: locked.map((p) => p.tenant_id), queues: locked.map((p) => p.queue), perPair, ...(limits ? { limits } : {}),
      })
      const metered = buckets ? this.meter(client, lockedJobs, buckets, limited) : undefined
      const jobs = metered ? metered.jobs : lockedJobs
      const { stamped, blocked } = await jobStampPending(client, { schema, jobs })
      if (stamped > 0) await jobNotify(client, { channel })
      // A pair whose clock is held released nothing: it must not ask for another round at once.
      const skip = new Set(blocked.map((p) => `${p.tenant_id}\u0000${p.queue}`))
      if (metered) await metered.take(skip)
      const perPairCount = new Map<string, number>()
      for (const j of jobs) {
        const k = `${j.tenantId}\u0000${j.queue}`
        if (!skip.has(k)) perPairCount.set(k, (perPairCount.get(k) ?? 0) + 1)
      }
      return {
        released: stamped,
        pairs: pairs.length,
        holding: true,
        ...(metered?.refillMs !== undefined ? { refillMs: metered.refillMs } : {}),
        // Another round at once only while releasing: paused pairs alone would make the loop spin.
        more: stamped > 0 && (tenants.size >= pairsPerRound || fullTenant || [...perPairCount.values()].some((n) => n >= perPair)),
      }
    })
  }

  /**
   * Locks and refills the buckets of rate-limited pairs and of their queues (rateLimitRefillMany()),
   * keyed by bucketKey(); `left` is what this round may still take.
   */
  private async refill(client: pg.PoolClient, pairs: Pair[]): Promise<Buckets> {
    const keys = new Map<string, Pair>()
    for (const p of pairs) {
      keys.set(bucketKey(p.tenant_id, p.queue), { tenant_id: p.tenant_id, queue: p.queue })
      keys.set(bucketKey('', p.queue), { tenant_id: '', queue: p.queue })
    }
    const rows = await rateLimitRefillMany(client, { schema: this.options.schema, keys: [...keys.values()] })
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
  private meter(client: pg.PoolClient, jobs: Releasable[], buckets: Buckets, limitedPairs: Pair[]): { jobs: Releasable[]; take: (skip: Set<string>) => Promise<void>; refillMs: number | undefined } {
    const { schema } = this.options
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

function bucketKey(tenant: string, queue: string): string {
  return `${tenant}\u0000${queue}`
}

/** How many jobs a pair's buckets (its own and its queue's) could pay at a cost of 1 each. */
function affordable(buckets: Buckets, p: Pair): number {
  const own = buckets.get(bucketKey(p.tenant_id, p.queue))
  const shared = buckets.get(bucketKey('', p.queue))
  return Math.floor(Math.min(own ? own.tokens : Infinity, shared ? shared.tokens : Infinity, 1_000_000))
}
