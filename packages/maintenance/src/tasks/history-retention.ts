import type { Kysely } from 'kysely'
import { listHistoryPartitions, type Database, type HistoryPartition } from '@pgqueue/core/internal'
import { flowFinishedDelete } from '../queries/flows.js'
import { completionCountsExpiredDelete, historyDefaultExpiredDelete, historyPartitionDetach, historyPartitionDrop } from '../queries/history-partitions.js'
import { isLockTimeout, lockTimeoutSetLocal, lockTryPartitions } from '../queries/locks.js'
import type { SkipReason, TaskContext } from './context.js'

/** A batched delete of rows older than `before`; returns how many it deleted (at most `limit`). */
type Purge = (trx: Kysely<Database>, p: { schema: string; before: Date; limit: number }) => Promise<number>

/** What the retention task did. */
export interface RetentionResult {
  /** Set when the task stopped early: another instance holds the lock, or a table lock wait timed out. */
  skipped?: SkipReason
  /** Partitions dropped (or detached, with retentionMode 'detach'), all of whose range is older than the retention. */
  removed: HistoryPartition[]
  /** Rows older than the retention deleted from the default partition (they had no partition to drop). */
  defaultRowsDeleted: number
  /** completion_counts rows older than the retention deleted (counts of completed jobs kept out of history). */
  completionCountRowsDeleted: number
  /** Finished flows whose last job finished before the retention, their nodes and edges deleted. */
  flowsDeleted: number
}

/**
 * Retention by whole partitions: drops (or detaches) every partition whose upper bound is at or before
 * now - retention, one partition per short transaction so the parent's exclusive lock is held only for
 * an instant each time. No row-by-row delete of history, except in the default partition: its rows
 * older than the retention have no partition to drop, so they are deleted in bounded batches
 * (defaultPurgeBatchSize rows, at most defaultPurgeMaxBatches batches per run). completion_counts rows
 * older than the retention go the same way, and so do finished flows past the retention (their nodes
 * and edges, defaultPurgeBatchSize flows per batch).
 */
export async function runRetentionTask(ctx: TaskContext): Promise<RetentionResult> {
  const { schema, retentionMs, retentionMode, ddlLockTimeoutMs, defaultPurgeBatchSize, defaultPurgeMaxBatches } = ctx.options
  const cutoff = new Date(ctx.options.clock.now().getTime() - retentionMs)
  const result: RetentionResult = { removed: [], defaultRowsDeleted: 0, completionCountRowsDeleted: 0, flowsDeleted: 0 }
  try {
    for (;;) {
      const step = await ctx.db.transaction().execute(async (trx) => {
        if (!(await lockTryPartitions(trx, { schema }))) return 'locked' as const
        await lockTimeoutSetLocal(trx, ddlLockTimeoutMs)
        // Listed again under the lock: another instance may have removed some in the meantime.
        const expired = (await listHistoryPartitions(trx, { schema })).find((p) => p.to <= cutoff)
        if (!expired) return 'done' as const
        if (retentionMode === 'detach') await historyPartitionDetach(trx, { schema, name: expired.name })
        else await historyPartitionDrop(trx, { schema, name: expired.name })
        result.removed.push(expired)
        ctx.logger.info({ component: 'maintenance', partition: expired.name, retentionMode }, `maintenance: ${retentionMode === 'detach' ? 'detached' : 'dropped'} history partition ${expired.name}`)
        return 'more' as const
      })
      if (step === 'locked') return { ...result, skipped: 'locked' }
      if (step === 'done') break
    }
    // Row-by-row deletes in bounded batches, each in its own short transaction under the partitions lock.
    const purges: [keyof Pick<RetentionResult, 'defaultRowsDeleted' | 'completionCountRowsDeleted' | 'flowsDeleted'>, Purge][] = [
      ['defaultRowsDeleted', historyDefaultExpiredDelete],
      ['completionCountRowsDeleted', completionCountsExpiredDelete],
      // Flows finished before the retention: their nodes and edges go too (their history already has).
      ['flowsDeleted', flowFinishedDelete],
    ]
    for (const [field, purge] of purges) {
      for (let i = 0; i < defaultPurgeMaxBatches; i++) {
        const n = await ctx.db.transaction().execute(async (trx) => {
          if (!(await lockTryPartitions(trx, { schema }))) return -1
          return purge(trx, { schema, before: cutoff, limit: defaultPurgeBatchSize })
        })
        if (n < 0) return { ...result, skipped: 'locked' }
        result[field] += n
        if (n < defaultPurgeBatchSize) break
      }
    }
    return result
  } catch (err) {
    if (isLockTimeout(err)) return { ...result, skipped: 'lock-timeout' }
    throw err
  }
}
