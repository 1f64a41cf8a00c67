import { PgQueueValidationError, TenantKey, resolveSchemaOptions, type ResolvedSchemaOptions, type SchemaOptions } from '@pgqueue/core/internal'

/** Options of Stats. Defaults are in STATS_DEFAULTS. */
export interface StatsOptions extends SchemaOptions {
  /**
   * The installation's tenant secret (initialize() returns it): needed by forTenant() on a user-role
   * connection, which must sign each transaction in as its tenant. Default PGQUEUE_TENANT_SECRET.
   */
  tenantSecret?: string
  /** Pool size when a URL is given. Default 2. */
  poolSize?: number
  /** Time zone that histogram buckets (hour, day) align to, an IANA name. Default 'UTC'. */
  timezone?: string
  /** Window of queues() and latency() when the call gives none, in ms. Default 24 hours. */
  defaultWindowMs?: number
  /**
   * Global queues() uses Maintenance's live_counts snapshot when it is at most this old (database
   * clock), and counts the live table itself otherwise. Default 1 minute.
   */
  liveCountsMaxAgeMs?: number
}

/** The defaults of StatsOptions, in one place. */
export const STATS_DEFAULTS = Object.freeze({ poolSize: 2, timezone: 'UTC', defaultWindowMs: 24 * 3_600_000, liveCountsMaxAgeMs: 60_000 })

/** Longest window or histogram range accepted: 400 days. */
export const MAX_WINDOW_MS = 400 * 24 * 3_600_000

/** Most buckets one histogram may return. */
export const MAX_BUCKETS = 10_000

/** StatsOptions with defaults filled in and checked. */
export interface ResolvedStatsOptions extends ResolvedSchemaOptions {
  tenantKey: TenantKey | undefined
  poolSize: number
  timezone: string
  defaultWindowMs: number
  liveCountsMaxAgeMs: number
}

/** A window in ms: a positive integer up to MAX_WINDOW_MS. */
export function validateWindow(field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0 || value > MAX_WINDOW_MS) {
    throw new PgQueueValidationError(field, `must be a whole number of milliseconds from 1 to ${MAX_WINDOW_MS}`, value)
  }
  return value
}

/** Fills defaults and rejects invalid options, naming the field. */
export function resolveStatsOptions(options: StatsOptions = {}): ResolvedStatsOptions {
  const poolSize = options.poolSize ?? STATS_DEFAULTS.poolSize
  if (!Number.isInteger(poolSize) || poolSize < 1 || poolSize > 100) throw new PgQueueValidationError('poolSize', 'must be an integer from 1 to 100', poolSize)
  const timezone = options.timezone ?? STATS_DEFAULTS.timezone
  try {
    if (typeof timezone !== 'string') throw new Error()
    new Intl.DateTimeFormat('en', { timeZone: timezone })
  } catch {
    throw new PgQueueValidationError('timezone', 'must be an IANA time zone name', timezone)
  }
  return {
    ...resolveSchemaOptions(options),
    tenantKey: TenantKey.resolveOptional(options.tenantSecret),
    poolSize,
    timezone,
    defaultWindowMs: validateWindow('defaultWindowMs', options.defaultWindowMs ?? STATS_DEFAULTS.defaultWindowMs),
    liveCountsMaxAgeMs: validateWindow('liveCountsMaxAgeMs', options.liveCountsMaxAgeMs ?? STATS_DEFAULTS.liveCountsMaxAgeMs),
  }
}
