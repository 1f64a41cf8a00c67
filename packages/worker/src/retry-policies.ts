import { DEFAULT_RETRY_POLICY, validateRetryPolicy, type RetryPolicy } from '@pgqueue/core/internal'
import { queueRetryPolicyMany } from './queries/queues.js'
import type { Queryable } from '@pgqueue/core/internal'

function parse(raw: unknown): RetryPolicy | undefined {
  if (raw === null || raw === undefined) return undefined
  try {
    return validateRetryPolicy(typeof raw === 'string' ? JSON.parse(raw) : raw)
  } catch {
    // A policy the producer validated cannot be invalid; one written by hand falls back to the default.
    return undefined
  }
}

/**
 * Resolves the policy of a failed run: the job's own, else its tenant's queue's, else the operator's
 * default for the queue, else DEFAULT_RETRY_POLICY.
 * Queue policies are read only for failures (the claim stays lean) and cached for `ttlMs`.
 */
export class RetryPolicies {
  private cache = new Map<string, { policy: RetryPolicy | undefined; at: number }>()

  constructor(
    private readonly schema: string,
    private readonly ttlMs = 10_000,
  ) {}

  async resolve(db: Queryable, jobs: { tenantId: string; queue: string; retryPolicy: unknown }[]): Promise<RetryPolicy[]> {
    const now = performance.now()
    const missing = new Map<string, { tenantId: string; queue: string }>()
    for (const j of jobs) {
      if (parse(j.retryPolicy)) continue
      const k = `${j.tenantId}\u0000${j.queue}`
      const hit = this.cache.get(k)
      if (!hit || now - hit.at > this.ttlMs) missing.set(k, j)
    }
    if (missing.size > 0) {
      const pairs = [...missing.values()]
      const found = await queueRetryPolicyMany(db, { schema: this.schema, tenantIds: pairs.map((x) => x.tenantId), queues: pairs.map((x) => x.queue) })
      if (this.cache.size > 10_000) this.cache.clear()
      for (const k of missing.keys()) this.cache.set(k, { policy: parse(found.get(k)), at: now })
    }
    return jobs.map((j) => parse(j.retryPolicy) ?? this.cache.get(`${j.tenantId}\u0000${j.queue}`)?.policy ?? DEFAULT_RETRY_POLICY)
  }
}
