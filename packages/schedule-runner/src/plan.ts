import { nextRunAfter, parseSchedule, validateRetryPolicy, PgQueueValidationError, type ParsedSchedule, type RetryPolicy } from '@pgqueue/core/internal'
import type { ClaimedScheduleRow } from './queries/schedules.js'

/** What to do after downtime when due times were missed. See README.md. */
export type MissedPolicy = 'fire_once' | 'skip'

/** What the runner decided for one due schedule. */
export interface FirePlan {
  /** Push a job now. */
  fire: boolean
  /** The schedule's next due time; always after `now`. */
  nextRunAt: Date
  /** True when due times were missed: more than one passed, or the only one is older than the grace. */
  missed: boolean
}

/** A schedule row read back into checked values. */
export interface CheckedSchedule {
  parsed: ParsedSchedule
  /** Grid origin of an interval: anchor_at, else the due time itself. Undefined for cron. */
  anchor: Date | undefined
  missedPolicy: MissedPolicy
  retryPolicy: RetryPolicy | null
}

/**
 * Re-checks a row read from the database (it may predate a validation rule, or have been written by
 * hand). Throws PgQueueValidationError naming the column; the runner then defers the row instead of
 * stopping.
 */
export function checkScheduleRow(row: ClaimedScheduleRow): CheckedSchedule {
  let parsed: ParsedSchedule
  if (row.cron !== null) {
    parsed = parseSchedule({ cron: row.cron, timezone: row.timezone ?? undefined }, { field: 'cron' })
  } else {
    const everyMs = Number(row.every_ms)
    if (!Number.isSafeInteger(everyMs) || everyMs <= 0) throw new PgQueueValidationError('every_ms', 'must be a positive whole number of milliseconds', row.every_ms)
    parsed = { kind: 'interval', everyMs }
  }
  if (row.missed_policy !== 'fire_once' && row.missed_policy !== 'skip') {
    throw new PgQueueValidationError('missed_policy', "must be 'fire_once' or 'skip'", row.missed_policy)
  }
  const retryPolicy = row.retry_policy === null || row.retry_policy === undefined ? null : validateRetryPolicy(row.retry_policy, 'retry_policy')
  const anchor = parsed.kind === 'interval' ? (row.anchor_at ?? row.next_run_at) : undefined
  return { parsed, anchor, missedPolicy: row.missed_policy, retryPolicy }
}

/**
 * Decides whether a due schedule fires and when it is due next.
 *
 * - On time (the due time is the only one that has passed, and it is at most `graceMs` old): fire,
 *   and the next due time is the one after the due time (not after `now`), so a late runner never
 *   shifts an interval's grid or a cron's series.
 * - Missed (a later due time has passed too, or the only one is older than `graceMs`): 'fire_once'
 *   pushes one job for all of them; 'skip' pushes none. Either way the next due time is the first one
 *   after `now`, on the same grid.
 */
export function planFire(schedule: CheckedSchedule, dueAt: Date, now: Date, graceMs: number): FirePlan {
  const following = nextRunAfter(schedule.parsed, dueAt, schedule.anchor)
  const missed = following.getTime() <= now.getTime() || now.getTime() - dueAt.getTime() > graceMs
  if (!missed) return { fire: true, nextRunAt: following, missed }
  const nextRunAt = following.getTime() > now.getTime() ? following : nextRunAfter(schedule.parsed, now, schedule.anchor)
  return { fire: schedule.missedPolicy === 'fire_once', nextRunAt, missed }
}
