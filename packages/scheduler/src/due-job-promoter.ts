import type pg from 'pg'
import { jobHoldMany, jobLockDue, jobNotify, jobStampPending } from './queries/jobs.js'
import { inTransaction } from './transaction.js'

/** What one promotion pass did. */
export interface PromoteResult {
  /** Due jobs moved into the fair order (pending). */
  promoted: number
  /** Due jobs parked in held because their (tenant, queue) is paused or capped. */
  held: number
  /** True when the batch was full: more may be due right now. */
  more: boolean
}

/**
 * Promotes due delayed, retried and rescued jobs. They wait in `scheduled` without a virtual time so
 * an old vt never jumps the queue; when due they are stamped with fresh fair times (or parked in held
 * for a paused or capped pair), all in one transaction with the row locks taken by SKIP LOCKED.
 */
export class DueJobPromoter {
  constructor(private readonly options: { schema: string; batchSize: number; channel: string }) {}

  async run(pool: pg.Pool): Promise<PromoteResult> {
    const { schema, batchSize, channel } = this.options
    return inTransaction(pool, async (client) => {
      const due = await jobLockDue(client, { schema, limit: batchSize })
      if (due.length === 0) return { promoted: 0, held: 0, more: false }
      const open = due.filter((d) => !d.throttled)
      const throttled = due.filter((d) => d.throttled)
      const promoted = await jobStampPending(client, {
        schema,
        jobs: open.map((d) => ({ tenantId: d.tenant_id, id: d.id, queue: d.queue, priority: d.priority, runAt: d.run_at })),
      })
      const held = await jobHoldMany(client, { schema, tenantIds: throttled.map((d) => d.tenant_id), ids: throttled.map((d) => d.id) })
      if (promoted > 0) await jobNotify(client, { channel })
      return { promoted, held, more: due.length >= batchSize }
    })
  }
}
