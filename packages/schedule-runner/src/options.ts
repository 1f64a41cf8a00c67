import { resolveSchemaOptions, systemClock, validateInt, validateTelemetryOptions, warningsLogger, type Clock, type Logger, type TelemetryOptions } from '@pgqueue/core/internal'

/** Options of ScheduleRunner.create(). Every field is optional; defaults are in DEFAULT_SCHEDULE_RUNNER_OPTIONS. */
export interface ScheduleRunnerOptions {
  /** Schema holding the pgqueue tables. Default 'pgqueue'. */
  schema?: string
  /** Pause between polls when nothing was due. Due times fire at most this late. Default 1000 ms. */
  pollMs?: number
  /** @deprecated Renamed pollMs (the name every component uses). */
  pollIntervalMs?: number
  /** Most schedules fired in one batch (one transaction). Default 1000. */
  batchSize?: number
  /**
   * Fewest schedules a due tenant may fire per batch. A batch visits up to batchSize / tenantQuantum
   * tenants in round-robin order and gives each an equal share (at least this quantum), so a tenant
   * with 100,000 due schedules takes one share per batch while others' few fire in the same batch.
   * Default 10.
   */
  tenantQuantum?: number
  /**
   * How late a due time may fire and still count as on time. Beyond it (or once the following due time
   * has passed too) the due time is missed, and the schedule's missed_policy decides: 'fire_once'
   * fires one job for all missed times, 'skip' fires none. Default 60000 ms.
   */
  missedGraceMs?: number
  /** How far ahead a schedule row that cannot be read (bad cron, unknown time zone, bad retry policy)
   *  is pushed before it is tried again. Default 3600000 ms (1 h). */
  invalidRetryMs?: number
  /** Longest wait for a lock in a batch's transaction, in ms: a backstop, since a batch never waits on a
   *  lock a tenant can hold (schedules are claimed with SKIP LOCKED and a schedule whose fair clock is
   *  held by an open producer transaction is deferred). Default 2000 ms. */
  lockTimeoutMs?: number
  /** Longest run of any statement of a batch, in ms. Default 30000 ms. */
  statementTimeoutMs?: number
  /** Connections when a URL is given (a caller's pg.Pool is used as is). Default 2. */
  poolSize?: number
  /** Upper bound of the pause after consecutive failures (database down). Default 10000 ms. */
  maxBackoffMs?: number
  /** Receives warnings and errors. Default: warnings and errors to the console (`warningsLogger`); pass `silentLogger` to rely on events alone. */
  logger?: Logger
  /** The time due schedules are compared with. Default: the system clock. Tests inject their own. */
  clock?: Clock
  /**
   * OpenTelemetry: a `send` span per tenant and batch (like a producer's push), whose context the jobs
   * carry, so each run the Worker traces is a child of the batch that created it; and the
   * sent-messages and operation-duration metrics. Looked up once, at the first batch: register the SDK
   * before. Records nothing when no SDK is registered.
   */
  telemetry?: TelemetryOptions
}

/** ScheduleRunnerOptions with every default filled in and checked. */
export interface ResolvedScheduleRunnerOptions {
  schema: string
  pollMs: number
  batchSize: number
  tenantQuantum: number
  missedGraceMs: number
  invalidRetryMs: number
  lockTimeoutMs: number
  statementTimeoutMs: number
  poolSize: number
  maxBackoffMs: number
  logger: Logger
  clock: Clock
  telemetry: TelemetryOptions
}

/** The defaults, in one place. */
export const DEFAULT_SCHEDULE_RUNNER_OPTIONS = Object.freeze({
  pollMs: 1_000,
  batchSize: 1_000,
  tenantQuantum: 10,
  missedGraceMs: 60_000,
  invalidRetryMs: 3_600_000,
  lockTimeoutMs: 2_000,
  statementTimeoutMs: 30_000,
  poolSize: 2,
  maxBackoffMs: 10_000,
})

const DAY_MS = 86_400_000

/** Fills defaults and validates; throws PgQueueValidationError naming the option. */
export function resolveScheduleRunnerOptions(options: ScheduleRunnerOptions = {}): ResolvedScheduleRunnerOptions {
  const d = DEFAULT_SCHEDULE_RUNNER_OPTIONS
  const batchSize = validateInt('batchSize', options.batchSize ?? d.batchSize, 1, 100_000)
  return {
    schema: resolveSchemaOptions({ schema: options.schema }).schema,
    pollMs: options.pollMs === undefined && options.pollIntervalMs !== undefined
      ? validateInt('pollIntervalMs', options.pollIntervalMs, 1, DAY_MS)
      : validateInt('pollMs', options.pollMs ?? d.pollMs, 1, DAY_MS),
    batchSize,
    tenantQuantum: validateInt('tenantQuantum', options.tenantQuantum ?? d.tenantQuantum, 1, batchSize),
    missedGraceMs: validateInt('missedGraceMs', options.missedGraceMs ?? d.missedGraceMs, 0, 365 * DAY_MS),
    invalidRetryMs: validateInt('invalidRetryMs', options.invalidRetryMs ?? d.invalidRetryMs, 1, 365 * DAY_MS),
    lockTimeoutMs: validateInt('lockTimeoutMs', options.lockTimeoutMs ?? d.lockTimeoutMs, 1, 600_000),
    statementTimeoutMs: validateInt('statementTimeoutMs', options.statementTimeoutMs ?? d.statementTimeoutMs, 1, 3_600_000),
    poolSize: validateInt('poolSize', options.poolSize ?? d.poolSize, 1, 100),
    maxBackoffMs: validateInt('maxBackoffMs', options.maxBackoffMs ?? d.maxBackoffMs, 1, DAY_MS),
    logger: options.logger ?? warningsLogger,
    clock: options.clock ?? systemClock,
    telemetry: validateTelemetryOptions(options.telemetry),
  }
}
