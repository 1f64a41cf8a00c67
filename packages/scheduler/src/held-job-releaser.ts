import type pg from 'pg'
import { jobListHeldPairs, jobLockReleasable, jobNotify, jobStampPending } from './queries/jobs.js'
import { queueLockForRelease } from './queries/queues.js'
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
}

/**
 * Releases held jobs of pairs that are no longer paused, up to their concurrency cap. Pairs are found
 * by a skip-scan over the held index from a rotating cursor, at most `pairsPerRound` per pass, so the
 * cost of a pass does not grow with the number of tenants and every pair gets its turn. Each pair is
 * taken by locking its queues row with SKIP LOCKED (see queueLockForRelease()), so two Schedulers never
 * release the same pair's room twice, and a pair whose row or fair clock another transaction holds is
 * skipped until a later pass instead of stalling the others.
 */
export class HeldJobReleaser {
  private cursor = { tenant: '', queue: '' }

  constructor(private readonly options: { schema: string; pairsPerRound: number; perPair: number; channel: string; timeouts: TransactionTimeouts }) {}

  async run(pool: pg.Pool): Promise<ReleaseResult> {
    const { schema, pairsPerRound, perPair, channel, timeouts } = this.options
    let pairs = await jobListHeldPairs(pool, { schema, afterTenant: this.cursor.tenant, afterQueue: this.cursor.queue, limit: pairsPerRound })
    if (pairs.length < pairsPerRound && (this.cursor.tenant !== '' || this.cursor.queue !== '')) {
      // Wrap around: the pairs before the cursor get their turn in the same pass.
      const seen = new Set(pairs.map((p) => `${p.tenant_id}\u0000${p.queue}`))
      const head = await jobListHeldPairs(pool, { schema, afterTenant: '', afterQueue: '', limit: pairsPerRound - pairs.length })
      pairs = pairs.concat(head.filter((p) => !seen.has(`${p.tenant_id}\u0000${p.queue}`)))
    }
    const last = pairs[pairs.length - 1]
    this.cursor = pairs.length >= pairsPerRound && last ? { tenant: last.tenant_id, queue: last.queue } : { tenant: '', queue: '' }
    if (pairs.length === 0) return { released: 0, pairs: 0, holding: false, more: false }
    return inTransaction(pool, timeouts, async (client) => {
      const locked = await queueLockForRelease(client, { schema, pairs })
      if (locked.length === 0) return { released: 0, pairs: pairs.length, holding: true, more: false }
      const jobs = await jobLockReleasable(client, { schema, tenantIds: locked.map((p) => p.tenant_id), queues: locked.map((p) => p.queue), perPair })
      const { stamped, blocked } = await jobStampPending(client, { schema, jobs })
      if (stamped > 0) await jobNotify(client, { channel })
      // A pair whose clock is held released nothing: it must not ask for another round at once.
      const skip = new Set(blocked.map((p) => `${p.tenant_id}\u0000${p.queue}`))
      const perPairCount = new Map<string, number>()
      for (const j of jobs) {
        const k = `${j.tenantId}\u0000${j.queue}`
        if (!skip.has(k)) perPairCount.set(k, (perPairCount.get(k) ?? 0) + 1)
      }
      return {
        released: stamped,
        pairs: pairs.length,
        holding: true,
        more: pairs.length >= pairsPerRound || [...perPairCount.values()].some((n) => n >= perPair),
      }
    })
  }
}
