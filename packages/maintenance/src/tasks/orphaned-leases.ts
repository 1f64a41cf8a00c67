import { jobRescueExpired, queryableOf } from '@pgqueue/core/internal'
import { lockTryTask } from '../queries/locks.js'
import type { SkipReason, TaskContext } from './context.js'

/** What the orphaned-leases task did. */
export interface LeasesResult {
  skipped?: SkipReason
  /** Jobs returned to 'scheduled' with run_at = now (attempts left). */
  rescued: number
  /** Jobs moved to history as failed (attempts spent). */
  failed: number
  /** Jobs moved to history as cancelled (a cancel was requested while they ran). */
  cancelled: number
}

/** Batches per run, so one run stays short even after a mass crash. */
const MAX_BATCHES = 20

/**
 * The safety net for leases the Scheduler did not rescue (it normally does within seconds): running
 * jobs whose lease expired more than orphanedLeaseGraceMs ago. Conservative by design: the grace
 * period (default 5 minutes) is far beyond any lease renewal, so a live worker is never overtaken.
 * The rescue itself is core's jobRescueExpired, the Scheduler's query, with that grace.
 */
export async function runOrphanedLeasesTask(ctx: TaskContext): Promise<LeasesResult> {
  const { schema, orphanedLeaseGraceMs: graceMs, orphanedLeaseBatchSize: limit } = ctx.options
  const result: LeasesResult = { rescued: 0, failed: 0, cancelled: 0 }
  for (let i = 0; i < MAX_BATCHES; i++) {
    const step = await ctx.db.transaction().execute(async (trx) => {
      if (!(await lockTryTask(trx, { schema, task: 'leases' }))) return undefined
      return jobRescueExpired(queryableOf(trx), { schema, graceMs, limit })
    })
    if (!step) return { ...result, skipped: 'locked' }
    result.rescued += step.rescued
    result.failed += step.failed
    result.cancelled += step.cancelled
    if (step.rescued + step.failed + step.cancelled < limit) break
  }
  if (result.rescued + result.failed + result.cancelled > 0) ctx.logger.warn({ component: 'maintenance', ...result }, 'maintenance: rescued orphaned leases')
  return result
}
