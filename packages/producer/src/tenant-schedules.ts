import {
  LIMITS,
  PgQueueValidationError,
  isUuid,
  nextRunAfter,
  parseSchedule,
  uuidv7,
  validateDate,
  validateName,
  validateRetryPolicy,
  withTenantTransaction,
  type Database,
  type ParsedSchedule,
} from '@pgqueue/core/internal'
import type { Kysely } from 'kysely'
import type { ProducerContext } from './context.js'
import { decodeCursor, encodeCursor, validateLimit } from './cursor.js'
import { mapTenantErrors } from './db-errors.js'
import { validatePayload, validatePriority, validateTarget } from './push-input.js'
import { jobHistoryListBySchedule } from './queries/job-history.js'
import { jobListBySchedule } from './queries/jobs.js'
import {
  scheduleDelete,
  scheduleGetByKey,
  scheduleGetForUpdate,
  scheduleList,
  scheduleSetPaused,
  scheduleUpsert,
  type ScheduleRow,
  type ScheduleValues,
} from './queries/schedules.js'
import { toHistoryEntry, toJob, toSchedule } from './rows.js'
import type { Page, PageOptions, Schedule, ScheduleInput, ScheduleRun } from './types.js'

const SCHEDULE_FIELDS = new Set(['key', 'queue', 'type', 'schedule', 'payload', 'payloadType', 'target', 'priority', 'retryPolicy', 'missedPolicy', 'startAt', 'paused'])

/**
 * The schedules of one tenant. Due times are computed here (at create and at resume) and stored in
 * next_run_at; the ScheduleRunner fires due schedules and advances next_run_at itself.
 */
export class TenantSchedules {
  /** @internal */
  constructor(
    private readonly ctx: ProducerContext,
    readonly tenantId: string,
  ) {}

  /**
   * Creates a schedule, or replaces the one with the same key. First due time: for an interval, startAt
   * when given (else the first grid point after now, the grid being anchored at startAt), otherwise now +
   * every; for cron, the first match after now (or at or after startAt). Replacing a schedule whose
   * cron/timezone/interval did not change, without startAt, keeps its anchor and next due time, so
   * declaring schedules at every boot is safe; the paused flag is kept unless given.
   */
  async create(input: ScheduleInput): Promise<Schedule> {
    this.ctx.assertOpen()
    const values = this.validate(input)
    const row = await this.inTenant((trx) => scheduleUpsert(trx, { schema: this.ctx.schema, tenantId: this.tenantId, values }))
    return toSchedule(row)
  }

  /** A schedule by key, or null. */
  async get(key: string): Promise<Schedule | null> {
    const k = this.checkKey(key)
    const row = await this.inTenant((trx) => scheduleGetByKey(trx, { schema: this.ctx.schema, tenantId: this.tenantId, key: k }))
    return row === undefined ? null : toSchedule(row)
  }

  /** Schedules by key, optionally of one queue. */
  async list(options: PageOptions & { queue?: string } = {}): Promise<Page<Schedule>> {
    this.ctx.assertOpen()
    const limit = validateLimit(options.limit)
    const queue = options.queue === undefined ? undefined : validateName('queue', options.queue, LIMITS.queueName)
    const cursor = decodeCursor(options.cursor, 1)
    const rows = await this.inTenant((trx) =>
      scheduleList(trx, {
        schema: this.ctx.schema,
        tenantId: this.tenantId,
        ...(queue === undefined ? {} : { queue }),
        ...(cursor ? { afterKey: cursor[0]! } : {}),
        limit: limit + 1,
      }),
    )
    const items = rows.slice(0, limit).map(toSchedule)
    return { items, nextCursor: rows.length > limit ? encodeCursor([items[items.length - 1]!.key]) : null }
  }

  /** Deletes a schedule; true when it existed. Jobs it already fired stay. */
  async delete(key: string): Promise<boolean> {
    const k = this.checkKey(key)
    return this.inTenant((trx) => scheduleDelete(trx, { schema: this.ctx.schema, tenantId: this.tenantId, key: k }))
  }

  /** Stops firing until resume(); null when there is no such schedule. */
  async pause(key: string): Promise<Schedule | null> {
    const k = this.checkKey(key)
    const row = await this.inTenant((trx) => scheduleSetPaused(trx, { schema: this.ctx.schema, tenantId: this.tenantId, key: k, paused: true }))
    return row === undefined ? null : toSchedule(row)
  }

  /**
   * Resumes a paused schedule: its next due time is recomputed from now (runs missed while paused are
   * skipped; an interval stays on its anchored grid). Resuming a schedule that is not paused changes
   * nothing. Null when there is no such schedule.
   */
  async resume(key: string): Promise<Schedule | null> {
    const k = this.checkKey(key)
    const p = { schema: this.ctx.schema, tenantId: this.tenantId, key: k }
    const row = await this.inTenant(async (trx) => {
      const current = await scheduleGetForUpdate(trx, p)
      if (current === undefined || !current.paused) return current
      const nextRunAt = nextRunAfter(parsedOf(current), this.ctx.options.clock.now(), current.anchor_at ?? undefined)
      return scheduleSetPaused(trx, { ...p, paused: false, nextRunAt })
    })
    return row === undefined ? null : toSchedule(row)
  }

  /**
   * The runs of a schedule, newest first: its live jobs and its history entries together, ordered by job
   * id (UUIDv7, so by the time each run was pushed). An unknown key gives an empty page.
   */
  async runs(key: string, options: PageOptions = {}): Promise<Page<ScheduleRun>> {
    const k = this.checkKey(key)
    const limit = validateLimit(options.limit)
    const cursor = decodeCursor(options.cursor, 1, (p) => isUuid(p[0]))
    return this.inTenant(async (trx) => {
      const schedule = await scheduleGetByKey(trx, { schema: this.ctx.schema, tenantId: this.tenantId, key: k })
      if (schedule === undefined) return { items: [], nextCursor: null }
      const p = { schema: this.ctx.schema, tenantId: this.tenantId, scheduleId: schedule.id, ...(cursor ? { beforeId: cursor[0]! } : {}), limit: limit + 1 }
      const live = (await jobListBySchedule(trx, p)).map((r): ScheduleRun => ({ finished: false, ...toJob(r) }))
      const done = (await jobHistoryListBySchedule(trx, p)).map((r): ScheduleRun => ({ finished: true, ...toHistoryEntry(r) }))
      // Both lists are sorted by id desc; merging and cutting at limit + 1 keeps the keyset exact.
      const merged = [...live, ...done].sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0)).slice(0, limit + 1)
      const items = merged.slice(0, limit)
      return { items, nextCursor: merged.length > limit ? encodeCursor([items[items.length - 1]!.id]) : null }
    })
  }

  private checkKey(key: string): string {
    this.ctx.assertOpen()
    return validateName('key', key, LIMITS.key)
  }

  private validate(input: ScheduleInput): ScheduleValues {
    if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new PgQueueValidationError('schedule', 'must be an object', input)
    for (const f of Object.keys(input)) if (!SCHEDULE_FIELDS.has(f)) throw new PgQueueValidationError(f, 'unknown field of a schedule', (input as unknown as Record<string, unknown>)[f])
    const key = validateName('key', input.key, LIMITS.key)
    const queue = validateName('queue', input.queue, LIMITS.queueName)
    const type = validateName('type', input.type, LIMITS.type)
    const parsed = parseSchedule(input.schedule, { minIntervalMs: this.ctx.options.minIntervalMs, field: 'schedule' })
    const { payload, payloadType } = validatePayload('schedule', input.payload, input.payloadType, this.ctx.options.payloadLimitBytes)
    const target = validateTarget('target', input.target)
    const priority = validatePriority('priority', input.priority)
    const retryPolicy = input.retryPolicy === undefined || input.retryPolicy === null ? null : JSON.stringify(validateRetryPolicy(input.retryPolicy, 'retryPolicy'))
    const missed = input.missedPolicy ?? 'fire_once'
    if (missed !== 'fire_once' && missed !== 'skip') throw new PgQueueValidationError('missedPolicy', "must be 'fire_once' or 'skip'", missed)
    if (input.startAt !== undefined) validateDate('startAt', input.startAt)
    if (input.paused !== undefined && typeof input.paused !== 'boolean') throw new PgQueueValidationError('paused', 'must be a boolean', input.paused)

    const now = this.ctx.options.clock.now()
    const startAt = input.startAt
    let anchorAt: Date | null = null
    let nextRunAt: Date
    if (parsed.kind === 'interval') {
      anchorAt = startAt ?? now
      nextRunAt = startAt === undefined ? new Date(now.getTime() + parsed.everyMs) : startAt >= now ? startAt : nextRunAfter(parsed, now, startAt)
    } else {
      // nextRunAfter is strictly after its argument: step back 1 ms so a match at startAt itself counts.
      nextRunAt = nextRunAfter(parsed, startAt !== undefined && startAt > now ? new Date(startAt.getTime() - 1) : now)
    }
    return {
      id: uuidv7(),
      key,
      queue,
      type,
      cron: parsed.kind === 'cron' ? parsed.cron : null,
      timezone: parsed.kind === 'cron' ? parsed.timezone : null,
      every_ms: parsed.kind === 'interval' ? parsed.everyMs : null,
      anchor_at: anchorAt,
      missed_policy: missed,
      payload,
      payload_type: payloadType,
      target,
      priority,
      retry_policy: retryPolicy,
      paused: input.paused,
      next_run_at: nextRunAt,
      resetTiming: startAt !== undefined,
    }
  }

  private inTenant<T>(fn: (trx: Kysely<Database>) => Promise<T>): Promise<T> {
    return mapTenantErrors(this.tenantId, () => withTenantTransaction(this.ctx.db, this.ctx.options.tenantKey, this.tenantId, fn))
  }
}

function parsedOf(row: ScheduleRow): ParsedSchedule {
  return row.cron !== null ? { kind: 'cron', cron: row.cron, timezone: row.timezone ?? 'UTC' } : { kind: 'interval', everyMs: Number(row.every_ms) }
}
