import {
  DEFAULT_MIN_INTERVAL_MS,
  DEFAULT_SCHEMA,
  DATABASE_LIMITS,
  LIMITS,
  PgQueueValidationError,
  TenantKey,
  systemClock,
  validateIdentifier,
  validateInt,
  validateTelemetryOptions,
  warningsLogger,
  type Clock,
  type Logger,
  type TelemetryOptions,
} from '@pgqueue/core/internal'

/** Options of Queues.create(), Schedules.create() and createProducer(). Every field is optional. */
export interface ProducerOptions {
  /** Schema holding the pgqueue tables. Default 'pgqueue'. */
  schema?: string
  /**
   * The installation's tenant secret (initialize() returns it), which signs each transaction in as its
   * tenant. Required; default the PGQUEUE_TENANT_SECRET environment variable.
   */
  tenantSecret?: string
  /** Largest payload accepted by push, in bytes, at most DATABASE_LIMITS.payloadBytes (64 MiB). Default LIMITS.payloadBytes (16 MiB). */
  payloadLimitBytes?: number
  /** Pool size when a URL is given (ignored for a pg.Pool you pass). Default 10. */
  poolSize?: number
  /** application_name reported to PostgreSQL when a URL is given. Default 'pgqueue-producer'. */
  applicationName?: string
  /** Rows per push_jobs() call in pushMany. Default 1,000 (the fastest chunk size measured). */
  pushChunkSize?: number
  /**
   * Payload and target bytes per push_jobs() call in pushMany; a chunk closes early when the next item
   * would pass it (one item always fits). Default 32 MiB: the statement's text form stays far below
   * what one JavaScript string can hold.
   */
  pushChunkBytes?: number
  /** Shortest interval a schedule may use. Default 1 s. */
  minIntervalMs?: number
  /** Where "now" comes from for delays and schedule due times; tests inject one. Default the system clock. */
  clock?: Clock
  /** Where warnings go (for example a login that bypasses row-level security). Default: the console, warnings and errors only. */
  logger?: Logger
  /**
   * OpenTelemetry: a `send` span per push call (its trace context is stored with the jobs, so the
   * Worker's `process` span joins the trace) and the sent-messages and operation-duration metrics.
   * Uses the global providers unless given; records nothing when no SDK is registered.
   */
  telemetry?: TelemetryOptions
}

/** ProducerOptions with every default filled in. */
export interface ResolvedProducerOptions {
  schema: string
  tenantKey: TenantKey
  payloadLimitBytes: number
  poolSize: number
  applicationName: string
  pushChunkSize: number
  pushChunkBytes: number
  minIntervalMs: number
  clock: Clock
  logger: Logger
  telemetry: TelemetryOptions
}

/** Fills the defaults (the only place they live) and validates; throws PgQueueValidationError naming the field. */
export function resolveProducerOptions(options: ProducerOptions = {}): ResolvedProducerOptions {
  if (typeof options !== 'object' || options === null) throw new PgQueueValidationError('options', 'must be an object', options)
  const clock = options.clock ?? systemClock
  if (typeof clock.now !== 'function') throw new PgQueueValidationError('clock', 'must have a now() method', clock)
  const applicationName = options.applicationName ?? 'pgqueue-producer'
  if (typeof applicationName !== 'string' || applicationName.length === 0 || applicationName.length > 63) {
    throw new PgQueueValidationError('applicationName', 'must be a string of 1 to 63 characters', applicationName)
  }
  return {
    schema: validateIdentifier(options.schema ?? DEFAULT_SCHEMA, 'schema'),
    tenantKey: TenantKey.resolve(options.tenantSecret),
    payloadLimitBytes: validateInt('payloadLimitBytes', options.payloadLimitBytes ?? LIMITS.payloadBytes, 0, DATABASE_LIMITS.payloadBytes),
    poolSize: validateInt('poolSize', options.poolSize ?? 10, 1, 1000),
    applicationName,
    pushChunkSize: validateInt('pushChunkSize', options.pushChunkSize ?? 1000, 1, 50_000),
    pushChunkBytes: validateInt('pushChunkBytes', options.pushChunkBytes ?? 32 * 1024 * 1024, 1, 256 * 1024 * 1024),
    minIntervalMs: validateInt('minIntervalMs', options.minIntervalMs ?? DEFAULT_MIN_INTERVAL_MS, 1, Number.MAX_SAFE_INTEGER),
    clock,
    logger: options.logger ?? warningsLogger,
    telemetry: validateTelemetryOptions(options.telemetry),
  }
}
