import type pg from 'pg'
import { jobListHeldPairs, jobLockReleasable, jobNotify, jobStampPending } from './queries/jobs.js'
import { queueLockForRelease } from './queries/queues.js'
import { rateLimitRefillMany, rateLimitTakeMany } from './queries/rate-limits.js'
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
      const lockedJobs = await jobLockReleasable(client, { schema, tenantIds: locked.map((p) => p.tenant_id), queues: locked.map((p) => p.queue), perPair })
      // Rate-limited pairs release only what their buckets hold (rare: only they pay these statements).
      const limited = lockedJobs.some((j) => j.limited)
      const metered = limited ? await this.meter(client, lockedJobs) : undefined
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
   * Filters locked held jobs through their token buckets (rate_limits): the buckets of the limited
   * pairs and of their queues are locked and refilled (rateLimitRefillMany()), then the pairs of a
   * queue take turns, one job each, in their own release order, while the job's cost fits in its
   * pair's bucket and in its queue's shared one (a cost above a bucket's capacity counts as the
   * capacity, or the job could never run). Turns make a queue-wide bucket's tokens go round the
   * tenants rather than to the first one visited. A pair stops at its first job that does not fit,
   * keeping its order. Returns the jobs to stamp (unlimited pairs' untouched), `take`, which debits
   * the buckets for the pairs actually stamped (a pair whose clock was busy took nothing), and the time
   * until a kept-back pair's buckets hold a quarter of their capacity (at least its next job's cost) again.
   */
  private async meter(client: pg.PoolClient, jobs: Releasable[]): Promise<{ jobs: Releasable[]; take: (skip: Set<string>) => Promise<void>; refillMs: number | undefined }> {
    const { schema } = this.options
    const key = (tenant: string, queue: string) => `${tenant}\u0000${queue}`
    const keys = new Map<string, { tenant_id: string; queue: string }>()
    for (const j of jobs) {
      if (!j.limited) continue
      keys.set(key(j.tenantId, j.queue), { tenant_id: j.tenantId, queue: j.queue })
      keys.set(key('', j.queue), { tenant_id: '', queue: j.queue })
    }
    const sorted = [...keys.values()].sort((a, b) => (a.tenant_id < b.tenant_id ? -1 : a.tenant_id > b.tenant_id ? 1 : a.queue < b.queue ? -1 : a.queue > b.queue ? 1 : 0))
    const buckets = new Map((await rateLimitRefillMany(client, { schema, keys: sorted })).map((b) => [key(b.tenant_id, b.queue), { ...b, left: b.tokens }]))
    const out: Releasable[] = []
    const byQueue = new Map<string, Map<string, Releasable[]>>()
    for (const j of jobs) {
      if (!j.limited) {
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
    const wait = (b: { capacity: number; rate: number; left: number } | undefined, cost: number) => {
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
      while (active.length > 0 && !stopped) {
        const next: typeof active = []
        for (const q of active) {
          const j = q.list[q.at]
          if (!j) continue
          const ownCost = q.own ? Math.min(j.cost, q.own.capacity) : 0
          const sharedCost = shared ? Math.min(j.cost, shared.capacity) : 0
          const ownShort = q.own !== undefined && q.own.left < ownCost
          const sharedShort = shared !== undefined && shared.left < sharedCost
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
          if (shared) shared.left -= sharedCost
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
