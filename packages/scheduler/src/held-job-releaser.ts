import type pg from 'pg'
import { jobListHeldPairs, jobLockReleasable, jobNotify, jobStampPending } from './queries/jobs.js'
import { queueLockForRelease } from './queries/queues.js'
import { affordable, RateLimitMeter } from './rate-limit-meter.js'
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

/**
 * Releases held jobs of pairs that are no longer paused, up to their concurrency cap. Pairs are found
 * per tenant (see jobListHeldPairs()): up to `pairsPerRound` tenants from a rotating cursor, each with
 * an equal part of `pairsPerRound` pairs from its own rotating queue cursor, so the cost of a pass does
 * not grow with the number of tenants or queues, every tenant is visited each round while there are
 * fewer tenants holding jobs than `pairsPerRound`, and no tenant's paused queues push another's out.
 * Each pair is taken by locking its queues row with SKIP LOCKED (see queueLockForRelease()), so two
 * Schedulers never release the same pair's room twice, and a pair whose row or fair clock another
 * transaction holds is skipped until a later pass instead of stalling the others. A rate-limited pair
 * releases what its token buckets allow (RateLimitMeter), in the same transaction.
 */
export class HeldJobReleaser {
  private tenantCursor = ''
  /** Per tenant, the last queue visited when its part of a round was full; bounded, a rotation hint. */
  private queueCursors = new Map<string, string>()
  private readonly meter: RateLimitMeter

  constructor(private readonly options: { schema: string; pairsPerRound: number; perPair: number; channel: string; timeouts: TransactionTimeouts }) {
    this.meter = new RateLimitMeter(options.schema)
  }

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
      const buckets = limited.length > 0 ? await this.meter.refill(client, limited) : undefined
      const limits = buckets ? limited.map((p) => ({ tenantId: p.tenant_id, queue: p.queue, n: affordable(buckets, p) })) : undefined
      const lockedJobs = await jobLockReleasable(client, {
        schema, tenantIds: locked.map((p) => p.tenant_id), queues: locked.map((p) => p.queue), perPair, ...(limits ? { limits } : {}),
      })
      const metered = buckets ? this.meter.fit(client, lockedJobs, buckets, limited) : undefined
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
}
