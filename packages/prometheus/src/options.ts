import { PgQueueValidationError, resolveSchemaOptions, validateOptionalInt, type ResolvedSchemaOptions, type SchemaOptions } from '@pgqueue/core/internal'

/** Options of registerPgQueueMetrics(). */
export interface PrometheusOptions extends SchemaOptions {
  /**
   * Add a `tenant` label to the live gauges and the worker counters. Off by default: every tenant
   * multiplies the series (cardinality), and the live counts then come from a scan of the live table per
   * refresh instead of Maintenance's per-queue snapshot. Finished totals and histograms stay per queue
   * (the rollups they come from have no tenant).
   */
  tenantLabel?: boolean
  /** Scrapes within this long of the last refresh reuse its numbers. Default 5,000 ms. */
  cacheMs?: number
  /** Prefix of every metric name. Default 'pgqueue_'. */
  prefix?: string
  /** Pool size when a URL is given. Default 1. */
  poolSize?: number
}

/** PrometheusOptions with defaults filled in. */
export interface ResolvedPrometheusOptions extends ResolvedSchemaOptions {
  tenantLabel: boolean
  cacheMs: number
  prefix: string
  poolSize: number
}

export const PROMETHEUS_DEFAULTS = Object.freeze({ tenantLabel: false, cacheMs: 5_000, prefix: 'pgqueue_', poolSize: 1 })

/** Fills defaults and rejects invalid options, naming the field. */
export function resolvePrometheusOptions(options: PrometheusOptions = {}): ResolvedPrometheusOptions {
  const prefix = options.prefix ?? PROMETHEUS_DEFAULTS.prefix
  if (typeof prefix !== 'string' || !/^[a-zA-Z_:][a-zA-Z0-9_:]*$|^$/.test(prefix)) throw new PgQueueValidationError('prefix', 'must be a Prometheus metric name prefix ([a-zA-Z_:][a-zA-Z0-9_:]*)', prefix)
  if (options.tenantLabel !== undefined && typeof options.tenantLabel !== 'boolean') throw new PgQueueValidationError('tenantLabel', 'must be a boolean', options.tenantLabel)
  return {
    ...resolveSchemaOptions(options),
    tenantLabel: options.tenantLabel ?? PROMETHEUS_DEFAULTS.tenantLabel,
    cacheMs: validateOptionalInt('cacheMs', options.cacheMs, PROMETHEUS_DEFAULTS.cacheMs, 0, 3_600_000),
    prefix,
    poolSize: validateOptionalInt('poolSize', options.poolSize, PROMETHEUS_DEFAULTS.poolSize, 1, 20),
  }
}
