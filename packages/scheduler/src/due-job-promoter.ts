import type pg from 'pg'
import { sleep } from '@pgqueue/core/internal'
import { jobHoldMany, jobLockDue, jobNotify, jobStampPending, type Pair } from './queries/jobs.js'
import { inTransaction, type TransactionTimeouts } from './transaction.js'

/** What one promotion pass did. */
export interface PromoteResult {
  /** Due jobs moved into the fair order (pending). */
  promoted: number
  /** Due jobs parked in held because their (tenant, queue) is paused or capped. */
  held: number
  /** Pairs whose due jobs were left scheduled because another transaction holds their fair clock. */
  blocked: number
  /** True when the batch was full: more may be due right now. */
  more: boolean
}

/** Batches one pass may take in a row while it finds pairs with a held clock to leave out. */
const MAX_BATCHES_PER_PASS = 8
/** Pause before a second pass over pairs whose clock was busy. */
const RELOOK_MS = 20

/**
 * Promotes due delayed, retried and rescued jobs. They wait in `scheduled` without a virtual time so
 * an old vt never jumps the queue; when due they are stamped with fresh fair times (or parked in held
 * for a paused or capped pair), in one transaction per batch with the row locks taken by SKIP LOCKED.
 * A batch is shared equally among the tenants with due jobs, found from a rotating cursor (see
 * jobLockDue()), so one tenant's flood of due jobs cannot hold back another tenant's.
 *
 * Nothing waits on a tenant: a pair whose fair clock another transaction holds (a producer's push left
 * open with `{ tx }`) keeps its due jobs scheduled until a later round (after one more look a moment
 * later, since most clocks are busy for milliseconds only), and the next batch of the same
 * pass leaves that pair out, so its backlog cannot crowd other tenants' due jobs out of the pass.
 */
export class DueJobPromoter {
  /** Where the next visit of tenants with scheduled jobs starts (see jobLockDue()). */
  private tenantCursor = ''

  constructor(private readonly options: { schema: string; batchSize: number; tenantsPerBatch: number; channel: string; timeouts: TransactionTimeouts }) {}

  async run(pool: pg.Pool): Promise<PromoteResult> {
    const total = await this.pass(pool)
    if (total.blocked === 0) return total
    // A clock is mostly busy for milliseconds (a push committing, the ScheduleRunner's batch): look
    // once more before leaving those pairs to a later round.
    await sleep(RELOOK_MS)
    const again = await this.pass(pool)
    return { promoted: total.promoted + again.promoted, held: total.held + again.held, blocked: again.blocked, more: total.more || again.more }
  }

  private async pass(pool: pg.Pool): Promise<PromoteResult> {
    const { schema, batchSize, tenantsPerBatch, channel, timeouts } = this.options
    const exclude: Pair[] = []
    const total: PromoteResult = { promoted: 0, held: 0, blocked: 0, more: false }
    for (let batch = 0; batch < MAX_BATCHES_PER_PASS; batch++) {
      const from = this.tenantCursor
      const r = await inTransaction(pool, timeouts, async (client) => {
        const found = await jobLockDue(client, { schema, afterTenant: from, tenants: tenantsPerBatch, limit: batchSize, exclude })
        // A visit that reached the last tenant starts the next one from the first.
        this.tenantCursor = found.visited >= tenantsPerBatch && found.lastTenant !== null ? found.lastTenant : ''
        const due = found.rows
        // Full: some tenant took its whole part, so it may have more due right now.
        const part = Math.ceil(batchSize / Math.max(1, found.dueTenants))
        const perTenant = new Map<string, number>()
        for (const d of due) perTenant.set(d.tenant_id, (perTenant.get(d.tenant_id) ?? 0) + 1)
        const full = [...perTenant.values()].some((n) => n >= part)
        if (due.length === 0) return { promoted: 0, held: 0, blocked: [] as Pair[], full: false, wrap: from !== '' && this.tenantCursor === '' }
        const open = due.filter((d) => !d.throttled)
        const throttled = due.filter((d) => d.throttled)
        const stamp = await jobStampPending(client, {
          schema,
          jobs: open.map((d) => ({ tenantId: d.tenant_id, id: d.id, queue: d.queue, priority: d.priority, runAt: d.run_at })),
        })
        const held = await jobHoldMany(client, { schema, tenantIds: throttled.map((d) => d.tenant_id), ids: throttled.map((d) => d.id) })
        if (stamp.stamped > 0) await jobNotify(client, { channel })
        return { promoted: stamp.stamped, held, blocked: stamp.blocked, full, wrap: from !== '' && this.tenantCursor === '' }
      })
      total.promoted += r.promoted
      total.held += r.held
      total.blocked += r.blocked.length
      exclude.push(...r.blocked)
      // A full batch that left pairs out may have kept other due jobs from this batch: take the next
      // one now, without those pairs. A full batch that left nothing out is the round's `more`.
      total.more = r.full && r.blocked.length === 0
      // A visit that started mid-way and reached the end: the tenants before the cursor get their turn
      // in this pass too.
      if (r.wrap && !r.full) continue
      // A visit that stopped at its tenant limit: the tenants after it get theirs.
      if (this.tenantCursor !== '' && !r.full) continue
      if (!r.full || r.blocked.length === 0) break
    }
    return total
  }
}
