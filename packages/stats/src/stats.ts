import type { Kysely } from 'kysely'
import { connect, PgQueueValidationError, validateName, validateTenantId, withTenantTransaction, LIMITS, type Connectable, type Connection, type Database } from '@pgqueue/core'
import { historyCountByQueue, historyHistogram, historyLatencyByQueue } from './queries/history.js'
import { jobsCountByQueue } from './queries/jobs.js'
import { schedulesSummaryByQueue } from './queries/schedules.js'
import { MAX_BUCKETS, resolveStatsOptions, validateWindow, type ResolvedStatsOptions, type StatsOptions } from './options.js'
import type { HistogramBucket, HistogramPoint, Percentiles, QueueLatency, QueueStats, ScheduleStats } from './types.js'

/** Options of queues(). */
export interface QueuesStatsOptions {
  /** Finished counts cover the last `window` ms. Default: the Stats' defaultWindowMs (24 h). */
  window?: number
  /** Only this queue. */
  queue?: string
}

/** Options of histogram(). */
export interface HistogramOptions {
  /** Range [from, to); buckets are clipped to it. */
  from: Date
  to: Date
  bucket: HistogramBucket
  /** Only this queue. */
  queue?: string
  /** Outcomes to count. Default all: completed, failed, cancelled. */
  states?: ('completed' | 'failed' | 'cancelled')[]
}

/** Options of latency(). */
export interface LatencyOptions {
  /** Jobs finished in the last `window` ms. Default: the Stats' defaultWindowMs (24 h). */
  window?: number
  /** Only this queue. */
  queue?: string
}

/** Adds the tenant to a global call (connected as the worker role). */
type WithTenant<T> = T & { tenantId?: string }

const BUCKET_MS: Record<HistogramBucket, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 }
const DAY_MS = 86_400_000
const HISTORY_STATES = ['completed', 'failed', 'cancelled'] as const

/**
 * Counts, histograms, latencies and schedule summaries per queue.
 *
 * Connected as the worker role, its methods span every tenant, or one with `tenantId`. Connected as
 * the user role, use `forTenant(tenantId)`: each query runs in a transaction whose tenant is set first
 * (set_config(..., true)), and row-level security limits it to that tenant. Window queries read only
 * the history partitions the window touches. Windows end at this process's clock (the window start is
 * sent as a parameter so the planner can prune partitions); live ages use the database's clock.
 */
export class Stats {
  /** The options in force, defaults filled in. */
  readonly options: ResolvedStatsOptions
  private readonly conn: Connection

  private constructor(target: Connectable, options: ResolvedStatsOptions) {
    this.options = options
    this.conn = connect(target, { max: options.poolSize, applicationName: 'pgqueue-stats' })
  }

  /** Creates Stats over a URL or a pg.Pool (worker role for all tenants, user role with forTenant()). */
  static create(target: Connectable, options: StatsOptions = {}): Stats {
    return new Stats(target, resolveStatsOptions(options))
  }

  /** The same methods, scoped to one tenant (works with the user role and the worker role alike). */
  forTenant(tenantId: string): TenantStats {
    return new TenantStats(this, validateTenantId(tenantId))
  }

  /** Per queue: live counts, finished counts in the window, oldest pending age, recent failures. Sorted by queue. */
  async queues(options: WithTenant<QueuesStatsOptions> = {}): Promise<QueueStats[]> {
    const windowMs = validateWindow('window', options.window ?? this.options.defaultWindowMs)
    const queue = optionalQueue(options.queue)
    return this.run(options.tenantId, async (db, tenantId) => {
      const live = await jobsCountByQueue(db, this.options.schema, { tenantId, queue })
      const now = Date.now()
      const done = await historyCountByQueue(db, this.options.schema, { tenantId, queue, since: new Date(now - windowMs), dayAgo: new Date(now - DAY_MS) })
      const byQueue = new Map<string, QueueStats>()
      const entry = (q: string): QueueStats => {
        let e = byQueue.get(q)
        if (!e) {
          e = { queue: q, pending: 0, scheduled: 0, running: 0, retrying: 0, completed: 0, failed: 0, cancelled: 0, oldestPendingAgeMs: null, failedLast24h: 0, lastFailureAt: null }
          byQueue.set(q, e)
        }
        return e
      }
      for (const r of live) {
        Object.assign(entry(r.queue), {
          pending: r.pending,
          scheduled: r.scheduled,
          running: r.running,
          retrying: r.retrying,
          oldestPendingAgeMs: r.oldest_pending_age_ms === null ? null : Math.max(0, Math.round(r.oldest_pending_age_ms)),
        })
      }
      for (const r of done) {
        Object.assign(entry(r.queue), {
          completed: r.completed,
          failed: r.failed,
          cancelled: r.cancelled,
          failedLast24h: r.failed_last_24h,
          lastFailureAt: r.last_failure_at,
        })
      }
      return [...byQueue.values()].sort((a, b) => (a.queue < b.queue ? -1 : a.queue > b.queue ? 1 : 0))
    })
  }

  /** Completed, failed and cancelled per minute, hour or day over [from, to), with empty buckets as zeros. */
  async histogram(options: WithTenant<HistogramOptions>): Promise<HistogramPoint[]> {
    const { from, to, bucket } = options
    if (!(from instanceof Date) || Number.isNaN(from.getTime())) throw new PgQueueValidationError('from', 'must be a valid Date', from)
    if (!(to instanceof Date) || Number.isNaN(to.getTime())) throw new PgQueueValidationError('to', 'must be a valid Date', to)
    if (to <= from) throw new PgQueueValidationError('to', 'must be after from', to)
    if (!(bucket in BUCKET_MS)) throw new PgQueueValidationError('bucket', "must be 'minute', 'hour' or 'day'", bucket)
    if ((to.getTime() - from.getTime()) / BUCKET_MS[bucket] > MAX_BUCKETS) {
      throw new PgQueueValidationError('bucket', `gives more than ${MAX_BUCKETS} buckets over this range; use a larger bucket`, bucket)
    }
    const states = options.states ?? [...HISTORY_STATES]
    if (!Array.isArray(states) || states.length === 0 || states.some((s) => !HISTORY_STATES.includes(s))) {
      throw new PgQueueValidationError('states', 'must be a non-empty list of completed, failed, cancelled', states)
    }
    const queue = optionalQueue(options.queue)
    return this.run(options.tenantId, async (db, tenantId) => {
      const rows = await historyHistogram(db, this.options.schema, { tenantId, queue, from, to, bucket, timezone: this.options.timezone, states })
      return rows.map((r) => ({ at: r.at, completed: r.completed, failed: r.failed, cancelled: r.cancelled }))
    })
  }

  /** p50/p95/p99 of wait time (run_at to started_at) and run time (started_at to finished_at) per queue, in ms. */
  async latency(options: WithTenant<LatencyOptions> = {}): Promise<QueueLatency[]> {
    const windowMs = validateWindow('window', options.window ?? this.options.defaultWindowMs)
    const queue = optionalQueue(options.queue)
    return this.run(options.tenantId, async (db, tenantId) => {
      const rows = await historyLatencyByQueue(db, this.options.schema, { tenantId, queue, since: new Date(Date.now() - windowMs) })
      return rows.map((r) => ({ queue: r.queue, count: r.count, waitMs: percentiles(r.wait), runMs: percentiles(r.run) }))
    })
  }

  /** Schedules: count, paused, next due run and last run, overall and per queue. */
  async schedules(options: { tenantId?: string } = {}): Promise<ScheduleStats> {
    return this.run(options.tenantId, async (db, tenantId) => {
      const rows = await schedulesSummaryByQueue(db, this.options.schema, { tenantId })
      const queues = rows.map((r) => ({ queue: r.queue, total: r.total, paused: r.paused, nextDueAt: r.next_due_at, lastRunAt: r.last_run_at }))
      return {
        total: queues.reduce((n, q) => n + q.total, 0),
        paused: queues.reduce((n, q) => n + q.paused, 0),
        nextDueAt: earliest(queues.map((q) => q.nextDueAt)),
        lastRunAt: latest(queues.map((q) => q.lastRunAt)),
        queues,
      }
    })
  }

  /** Closes the pool when it was created from a URL. */
  async close(): Promise<void> {
    await this.conn.close()
  }

  /**
   * Runs fn for one tenant in a transaction whose tenant is set first by its own statement (a CTE
   * setting it would not be safe: the scan may run first), or across tenants on the pool.
   */
  private async run<T>(tenantId: string | undefined, fn: (db: Kysely<Database>, tenantId: string | undefined) => Promise<T>): Promise<T> {
    if (tenantId === undefined) return fn(this.conn.db, undefined)
    const tenant = validateTenantId(tenantId)
    return withTenantTransaction(this.conn.db, tenant, (trx) => fn(trx, tenant))
  }
}

/** Stats of one tenant: the methods of Stats without the tenantId option. Get one with Stats.forTenant(). */
export class TenantStats {
  /** @internal */
  constructor(
    private readonly stats: Stats,
    /** The tenant every query is scoped to. */
    readonly tenantId: string,
  ) {}

  /** See Stats.queues(). */
  queues(options: QueuesStatsOptions = {}): Promise<QueueStats[]> {
    return this.stats.queues({ ...options, tenantId: this.tenantId })
  }

  /** See Stats.histogram(). */
  histogram(options: HistogramOptions): Promise<HistogramPoint[]> {
    return this.stats.histogram({ ...options, tenantId: this.tenantId })
  }

  /** See Stats.latency(). */
  latency(options: LatencyOptions = {}): Promise<QueueLatency[]> {
    return this.stats.latency({ ...options, tenantId: this.tenantId })
  }

  /** See Stats.schedules(). */
  schedules(): Promise<ScheduleStats> {
    return this.stats.schedules({ tenantId: this.tenantId })
  }
}

function optionalQueue(queue: unknown): string | undefined {
  return queue === undefined ? undefined : validateName('queue', queue, LIMITS.queueName)
}

function percentiles(values: number[] | null): Percentiles {
  const [p50 = 0, p95 = 0, p99 = 0] = (values ?? []).map(Number)
  return { p50, p95, p99 }
}

function earliest(dates: (Date | null)[]): Date | null {
  return dates.reduce<Date | null>((m, d) => (d && (!m || d < m) ? d : m), null)
}

function latest(dates: (Date | null)[]): Date | null {
  return dates.reduce<Date | null>((m, d) => (d && (!m || d > m) ? d : m), null)
}
