import { createHistoryPartition, partitionEnd, partitionStart, type HistoryPartition } from '@pgqueue/core/internal'
import { historyDefaultPeriodsList } from '../queries/history-partitions.js'
import { isLockTimeout, lockTimeoutSetLocal, lockTryPartitions } from '../queries/locks.js'
import type { SkipReason, TaskContext } from './context.js'

/** What the partitions task did. */
export interface PartitionsResult {
  /** Set when the task did nothing this time. */
  skipped?: SkipReason
  /** Partitions this run created (ahead of time, or for periods whose rows sat in the default partition). */
  created: HistoryPartition[]
  /** Rows moved from the default partition into the partitions created. */
  movedRows: number
}

/** How many stray periods of the default partition get their own partition per run. */
const MAX_BACKFILL_PERIODS = 100

/**
 * Makes sure a partition exists for the current period and `partitionsAhead` periods after it, and
 * for every period within the retention that has rows in the default partition (rows that arrived
 * while Maintenance was not running): creating such a partition moves those rows into it. One
 * transaction under the partitions lock; when another instance holds it, this run is skipped.
 */
export async function runPartitionsTask(ctx: TaskContext): Promise<PartitionsResult> {
  const { schema, partitionGranularity: granularity, partitionsAhead, retentionMs, ddlLockTimeoutMs } = ctx.options
  const now = ctx.options.clock.now()
  try {
    return await ctx.db.transaction().execute(async (trx) => {
      if (!(await lockTryPartitions(trx, { schema }))) return { skipped: 'locked' as const, created: [], movedRows: 0 }
      await lockTimeoutSetLocal(trx, ddlLockTimeoutMs)
      const wanted: Date[] = []
      let at = partitionStart(now, granularity)
      for (let i = 0; i <= partitionsAhead; i++) {
        wanted.push(at)
        at = partitionEnd(at, granularity)
      }
      const horizon = at
      const strays = await historyDefaultPeriodsList(trx, {
        schema,
        granularity,
        from: new Date(now.getTime() - retentionMs),
        to: horizon,
        limit: MAX_BACKFILL_PERIODS,
      })
      const result: PartitionsResult = { created: [], movedRows: 0 }
      for (const when of [...strays, ...wanted]) {
        const p = await createHistoryPartition(trx, when, { schema, granularity })
        if (p.created) {
          result.created.push({ name: p.name, from: p.from, to: p.to })
          result.movedRows += p.movedRows
          ctx.logger.info({ component: 'maintenance', partition: p.name, from: p.from, to: p.to, movedRows: p.movedRows }, `maintenance: created history partition ${p.name}`)
        }
      }
      return result
    })
  } catch (err) {
    if (isLockTimeout(err)) return { skipped: 'lock-timeout', created: [], movedRows: 0 }
    throw err
  }
}
