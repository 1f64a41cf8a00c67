import { jitOffSetLocal, listHistoryPartitions } from '@pgqueue/core/internal'
import { lockTryTask } from '../queries/locks.js'
import {
  historyBrinSummarize,
  historyOldestBound,
  historyRollupExpiredDelete,
  historyRollupHoursFromMinutes,
  historyRollupUpsert,
  rollupStateAdvance,
  rollupStateLock,
} from '../queries/stats-rollups.js'
import type { SkipReason, TaskContext } from './context.js'

/** What the rollup task did. */
export interface RollupResult {
  skipped?: SkipReason
  /** Chunks rolled up this run (each its own short transaction). */
  chunks: number
  /** The watermark after this run: every history row finished before it is in the rollups. Null when history is empty and was never rolled up. */
  rolledUpTo: Date | null
  /** False when the run stopped at rollupMaxChunksPerRun with history still to roll up (a first run on a long history). */
  caughtUp: boolean
  /** Minute and hour rows written (inserted or recomputed). */
  minuteRows: number
  hourRows: number
  /** Rollup rows deleted by retention (minutes past rollupMinutesRetentionMs, hours past retentionMs). */
  deletedRows: number
  /** History BRIN block ranges summarized before rolling up (pages appended since the last summary). */
  summarizedRanges: number
}

const MINUTE = 60_000
const HOUR = 3_600_000
const floorTo = (ms: number, unit: number): number => Math.floor(ms / unit) * unit

/**
 * Rolls finished jobs up into per-minute and per-hour rows (all tenants), so global Stats read a few
 * hundred rows instead of millions. Each chunk is one transaction under the task's row lock that
 * reads the watermark, aggregates history finished in [watermark, end) and moves the watermark to
 * `end`, all or nothing: a rerun or a second instance never counts a row twice.
 *
 * `end` is now - rollupSafetyLagMs, rounded down to the minute. The lag is there because finished_at is
 * the completing transaction's start time (now()), and that transaction may commit later: a row that
 * commits after the watermark passed its finished_at would never be counted. With the default 2
 * minutes, a completion transaction may take up to 2 minutes (less any clock skew between this host and
 * the database). Rows inserted later than that with an older finished_at (a hand-made import, a
 * transaction held open) are missed by the rollups; tenant-scoped Stats, which read raw rows, still
 * see them. Rows moved out of the default partition keep their finished_at, so they are counted once.
 *
 * A first run starts at the oldest history partition's bound (or the oldest default-partition row) and
 * takes at most rollupMaxChunksPerRun chunks of rollupChunkMs, hour-aligned, so a long history is
 * caught up over several runs without a long transaction. Minute rows are written only for the last
 * rollupMinutesRetentionMs; hour rows are recomputed from history for every hour a chunk touches.
 */
export async function runStatsRollupTask(ctx: TaskContext): Promise<RollupResult> {
  const { schema, rollupSafetyLagMs, rollupChunkMs, rollupMaxChunksPerRun, rollupMinutesRetentionMs, retentionMs } = ctx.options
  const result: RollupResult = { chunks: 0, rolledUpTo: null, caughtUp: false, minuteRows: 0, hourRows: 0, deletedRows: 0, summarizedRanges: 0 }
  const now = ctx.options.clock.now().getTime()
  const end = floorTo(now - rollupSafetyLagMs, MINUTE)
  const minutesCut = floorTo(now - rollupMinutesRetentionMs, MINUTE)
  result.summarizedRanges = await summarizeNewHistoryRanges(ctx)
  for (;;) {
    const step = await ctx.db.transaction().execute(async (trx) => {
      if (!(await lockTryTask(trx, { schema, task: 'rollup' }))) return 'locked' as const
      await jitOffSetLocal(trx)
      const state = await rollupStateLock(trx, { schema })
      let from = state.rolled_up_to?.getTime()
      if (from === undefined) {
        const oldest = (await listHistoryPartitions(trx, { schema }))[0]?.from ?? null
        const bound = await historyOldestBound(trx, { schema, oldestPartitionFrom: oldest })
        from = bound ? floorTo(bound.getTime(), HOUR) : end
      }
      if (from >= end || result.chunks >= rollupMaxChunksPerRun) {
        if (state.rolled_up_to === null) {
          // Nothing to roll up yet (no history, or it starts after `end`): the watermark starts here.
          from = Math.min(from, end)
          await rollupStateAdvance(trx, { schema, rolledUpTo: new Date(from), minutesFrom: null })
        }
        return { done: true, rolledUpTo: new Date(from) }
      }
      // A chunk cut short ends on an hour, so the next one starts a fresh hour.
      const to = from + rollupChunkMs < end ? floorTo(from + rollupChunkMs, HOUR) : end
      const minutesFrom = Math.max(from, minutesCut)
      if (minutesFrom < to) {
        result.minuteRows += await historyRollupUpsert(trx, { schema, table: 'history_rollup_minutes', unit: 'minute', from: new Date(minutesFrom), to: new Date(to) })
      }
      // Minute rows stay contiguous from minutes_from up to the watermark; a gap restarts them.
      const contiguous = state.minutes_from !== null && minutesFrom === from
      // Hours come from the minute rows when those cover the hour so far (every run but a first
      // backfill of history older than the minute retention), else from history itself.
      const hourFrom = floorTo(from, HOUR)
      const minutesCover = minutesFrom <= hourFrom || (contiguous && state.minutes_from!.getTime() <= hourFrom)
      result.hourRows += minutesCover
        ? await historyRollupHoursFromMinutes(trx, { schema, from: new Date(hourFrom), to: new Date(to) })
        : await historyRollupUpsert(trx, { schema, table: 'history_rollup_hours', unit: 'hour', from: new Date(hourFrom), to: new Date(to) })
      await rollupStateAdvance(trx, { schema, rolledUpTo: new Date(to), minutesFrom: contiguous ? state.minutes_from : new Date(Math.min(minutesFrom, to)) })
      return { done: false, rolledUpTo: new Date(to) }
    })
    if (step === 'locked') return { ...result, skipped: 'locked' }
    result.rolledUpTo = step.rolledUpTo
    if (step.done) break
    result.chunks += 1
  }
  result.caughtUp = result.rolledUpTo !== null && result.rolledUpTo.getTime() >= end
  result.deletedRows = await ctx.db.transaction().execute(async (trx) => {
    if (!(await lockTryTask(trx, { schema, task: 'rollup' }))) return 0
    return historyRollupExpiredDelete(trx, { schema, minutesBefore: new Date(minutesCut), hoursBefore: new Date(floorTo(now - retentionMs, HOUR)) })
  })
  if (result.chunks > 0) ctx.logger.debug({ component: 'maintenance', ...result }, 'maintenance: rolled up history')
  return result
}

/**
 * Summarizes the history BRIN ranges appended since the last summary, in its own transaction under the
 * task's lock. Best effort: on a lock timeout (a VACUUM on a partition) the rollup still runs, reading
 * the unsummarized pages, and the next run summarizes them.
 */
async function summarizeNewHistoryRanges(ctx: TaskContext): Promise<number> {
  const { schema, ddlLockTimeoutMs } = ctx.options
  try {
    return await ctx.db.transaction().execute(async (trx) => {
      if (!(await lockTryTask(trx, { schema, task: 'rollup' }))) return 0
      return historyBrinSummarize(trx, { schema, lockTimeoutMs: ddlLockTimeoutMs })
    })
  } catch (err) {
    ctx.logger.debug({ component: 'maintenance', err }, 'maintenance: history BRIN summary skipped')
    return 0
  }
}
