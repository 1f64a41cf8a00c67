import { liveCountsRefresh } from '../queries/live-counts.js'
import { lockTryTask } from '../queries/locks.js'
import type { SkipReason, TaskContext } from './context.js'

/** What the liveCounts task did. */
export interface LiveCountsResult {
  skipped?: SkipReason
  /** Queues in the new snapshot. */
  queues: number
}

/**
 * Takes the live_counts snapshot that global Stats.queues() reads instead of counting every live job
 * on each call: one scan of the live table per run (every liveCountsEveryMs), whatever the number of
 * dashboards polling. Nothing on the worker's path maintains counters (they would serialise it).
 */
export async function runLiveCountsTask(ctx: TaskContext): Promise<LiveCountsResult> {
  return ctx.db.transaction().execute(async (trx) => {
    if (!(await lockTryTask(trx, { schema: ctx.options.schema, task: 'liveCounts' }))) return { skipped: 'locked' as const, queues: 0 }
    return { queues: await liveCountsRefresh(trx, { schema: ctx.options.schema }) }
  })
}
