import { CronExpressionParser } from 'cron-parser'
import { PgQueueValidationError } from './errors.js'
import { timeZoneOffsetMinutes } from './time-zone.js'
import { LIMITS, utf8Length } from './validate.js'

/** How a caller describes a schedule: a cron expression in an IANA time zone, or a fixed interval. */
export type ScheduleSpec = { cron: string; timezone?: string } | { every: string | number }

/** A checked schedule, as stored. */
export type ParsedSchedule = { kind: 'cron'; cron: string; timezone: string } | { kind: 'interval'; everyMs: number }

/** The longest interval accepted: ten years. */
export const MAX_INTERVAL_MS = 10 * 366 * 86_400_000

/** The shortest interval accepted unless the caller lowers it. */
export const DEFAULT_MIN_INTERVAL_MS = 1_000

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }
const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/

/** Parses '15m', '1h30m', '500ms', '2d' or a number of milliseconds. */
export function parseDuration(input: string | number, field = 'duration'): number {
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || !Number.isInteger(input)) throw new PgQueueValidationError(field, 'must be a whole number of milliseconds', input)
    return input
  }
  if (typeof input !== 'string' || input.trim() === '') throw new PgQueueValidationError(field, "must be a duration such as '15m' or a number of milliseconds", input)
  let rest = input.trim().toLowerCase().replace(/\s+/g, '')
  let total = 0
  while (rest.length > 0) {
    const m = DURATION_RE.exec(rest)
    if (!m) throw new PgQueueValidationError(field, `cannot read duration ${JSON.stringify(input)}; use units ms, s, m, h, d, w`, input)
    total += Number(m[1]) * UNIT_MS[m[2]!]!
    rest = rest.slice(m[0].length)
  }
  return Math.round(total)
}

/** Throws unless `timezone` is an IANA zone this runtime knows. */
export function validateTimezone(timezone: unknown, field = 'timezone'): string {
  if (typeof timezone !== 'string' || timezone === '') throw new PgQueueValidationError(field, 'must be an IANA time zone name', timezone)
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone })
  } catch {
    throw new PgQueueValidationError(field, `unknown time zone ${JSON.stringify(timezone)}`, timezone)
  }
  return timezone
}

/** Checks a schedule spec; throws PgQueueValidationError naming the field. */
export function parseSchedule(spec: unknown, options: { minIntervalMs?: number; field?: string } = {}): ParsedSchedule {
  const field = options.field ?? 'schedule'
  if (typeof spec !== 'object' || spec === null) throw new PgQueueValidationError(field, "must be { cron, timezone? } or { every }", spec)
  const s = spec as Record<string, unknown>
  if ('cron' in s && 'every' in s) throw new PgQueueValidationError(field, 'give either cron or every, not both', spec)
  if ('every' in s) {
    const everyMs = parseDuration(s.every as string | number, `${field}.every`)
    const min = options.minIntervalMs ?? DEFAULT_MIN_INTERVAL_MS
    if (everyMs < min) throw new PgQueueValidationError(`${field}.every`, `must be at least ${min} ms`, s.every)
    if (everyMs > MAX_INTERVAL_MS) throw new PgQueueValidationError(`${field}.every`, `must be at most ${MAX_INTERVAL_MS} ms (10 years)`, s.every)
    return { kind: 'interval', everyMs }
  }
  if (typeof s.cron !== 'string' || s.cron.trim() === '') throw new PgQueueValidationError(`${field}.cron`, 'must be a cron expression', s.cron)
  const timezone = validateTimezone(s.timezone ?? 'UTC', `${field}.timezone`)
  const cron = s.cron.trim()
  if (utf8Length(cron) > LIMITS.cron) throw new PgQueueValidationError(`${field}.cron`, `must be at most ${LIMITS.cron} bytes`, s.cron)
  // cron-parser reads a 4-field string as if the seconds were left off the end ("*/5 * * *" ran every 5
  // hours): take only the two standard shapes, and the @daily-style macros.
  const fields = cron.split(/\s+/).length
  if (!cron.startsWith('@') && fields !== 5 && fields !== 6) {
    throw new PgQueueValidationError(`${field}.cron`,
      `must have 5 fields (minute hour day-of-month month day-of-week) or 6 (a seconds field first), not ${fields}: ${JSON.stringify(cron)}`, s.cron)
  }
  try {
    CronExpressionParser.parse(cron, { tz: timezone, strict: false })
  } catch (err) {
    throw new PgQueueValidationError(`${field}.cron`, `invalid cron expression ${JSON.stringify(cron)}: ${(err as Error).message}`, s.cron)
  }
  return { kind: 'cron', cron, timezone }
}

/**
 * The first due time strictly after `after`.
 * Intervals are anchored: due times are anchor + k * every, so a late runner does not make them drift.
 * Cron follows cron-parser's handling of daylight-saving changes: on a spring-forward day a time
 * inside the skipped hour runs once, shifted by the gap (02:30 runs at 03:30); on a fall-back day a
 * time inside the repeated hour runs once, at its first occurrence. Both hold whatever `after` is,
 * including an instant inside the change (see below).
 */
export function nextRunAfter(schedule: ParsedSchedule, after: Date, anchor?: Date): Date {
  if (schedule.kind === 'interval') {
    const base = (anchor ?? after).getTime()
    const t = after.getTime()
    if (t < base) return new Date(base)
    const k = Math.floor((t - base) / schedule.everyMs) + 1
    return new Date(base + k * schedule.everyMs)
  }
  const tz = schedule.timezone
  const next = CronExpressionParser.parse(schedule.cron, { currentDate: after, tz }).next().toDate()
  // Counted from a start inside a daylight-saving change, cron-parser misplaces that day's run: from
  // 03:10 on a spring-forward day it skips the 02:30 run shifted to 03:30, and from the second pass of
  // a fall-back day's repeated hour it runs 01:30 again. So when the offset differs between a little
  // before `after` and the next run, count from before the change and keep the first run after `after`.
  const before = after.getTime() - DST_LOOKBACK_MS
  if (timeZoneOffsetMinutes(tz, before) === timeZoneOffsetMinutes(tz, next.getTime())) return next
  const runs = CronExpressionParser.parse(schedule.cron, { currentDate: new Date(before), tz })
  for (let i = 0; i < DST_LOOKBACK_MAX_RUNS; i++) {
    const run = runs.next().toDate()
    if (run > after) return run
  }
  return next
}

/** Longer than any daylight-saving shift in the time zone database (2 h at most, historically). */
const DST_LOOKBACK_MS = 3 * 3_600_000
/** Runs stepped over at most when counting from before a change (an every-second cron over 3 h). */
const DST_LOOKBACK_MAX_RUNS = 3 * 3_600 + 1
