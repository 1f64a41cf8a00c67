import type { Kysely } from 'kysely'
import { connect, jitOffSetLocal, latencyPercentile, PgQueueValidationError, validateDate, validateName, validateTenantId, withTenantTransaction, LATENCY_BUCKET_COUNT, LIMITS, type Connectable, type Connection, type Database } from '@pgqueue/core/internal'
import {
  completionCountQueues,
  historyCountByQueue,
  historyHistogram,
  historyLatencyBucketsRaw,
  historyLatencyByQueue,
  type HistoryCountRow,
  type LatencyBucketRow,
} from './queries/history.js'
import { historyCountByQueueFromRollups, historyHistogramFromRollups, historyLatencyBucketsFromRollups } from './queries/history-rollups.js'
import { jobsCountByQueue } from './queries/jobs.js'
import { liveCountsByQueue } from './queries/live-counts.js'
import { rollupStateRead, rollupStateReadable, type RollupStateRow } from './queries/rollup-state.js'
import { hasWholeHourOffsets } from './time-zone.js'
import { planWindow } from './window-plan.js'
import { schedulesSummaryByQueue } from './queries/schedules.js'
import { fairnessSettings, historyCountByTenant, rateLimitsWithTokens } from './queries/fairness.js'
import { MAX_BUCKETS, resolveStatsOptions, validateWindow, type ResolvedStatsOptions, type StatsOptions } from './options.js'
import type { FairnessStats, HistogramBucket, HistogramPoint, Percentiles, QueueLatency, QueueStats, ScheduleStats } from './types.js'

/** Options of queues(). */
export interface QueuesStatsOptions {
  /** Finished counts cover the last `window` ms. Default: the Stats' defaultWindowMs (24 h). */
  window?: number
  /** Only this queue. */
  queue?: string
  /** Global calls: count live and finished jobs from the raw tables, ignoring Maintenance's snapshot and rollups (slow at scale). */
  exact?: boolean
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
  /** Global calls: count raw history, ignoring the rollups (slow at scale). */
  exact?: boolean
}

/** Options of latency(). */
export interface LatencyOptions {
  /** Jobs finished in the last `window` ms. Default: the Stats' defaultWindowMs (24 h). */
  window?: number
  /** Only this queue. */
  queue?: string
  /** Global calls: exact percentile_cont over raw history instead of the rollups' histograms (slow at scale). */
  exact?: boolean
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
 *
 * Global calls (all tenants) read what Maintenance's `rollup` and `liveCounts` tasks maintain, when
 * they exist: live counts from a snapshot at most liveCountsMaxAgeMs old (`liveCountsAt` says when it
 * was taken), finished jobs from minute and hour rollups plus raw history after the rollups' watermark
 * and at partial-minute window edges, so counts and histograms stay exact; latency percentiles come
 * from merged log-bucket histograms, within 9.1 % of the exact value (LATENCY_RELATIVE_ERROR). Without
 * Maintenance, or with `exact: true`, they read the raw tables (correct, but they scan). Tenant-scoped
 * calls always read raw rows through the tenant's indexes.
 *
 * Completed jobs of queues configured with `keepCompleted: false` are counted from completion_counts
 * beside history on every path, so counts stay exact; their latency percentiles come from buckets.
 */
export class Stats {
  /** The options in force, defaults filled in. */
  readonly options: ResolvedStatsOptions
  private readonly conn: Connection
  private rollupsReadable = false

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
    const exact = exactOption(options.exact)
    return this.run(options.tenantId, async (db, tenantId) => {
      const state = tenantId === undefined && !exact ? await this.rollupState(db) : undefined
      const snapshotAt = state?.live_counts_at ?? null
      const fresh = snapshotAt !== null && state!.now.getTime() - snapshotAt.getTime() <= this.options.liveCountsMaxAgeMs
      const live = fresh ? await liveCountsByQueue(db, { schema: this.options.schema, queue }) : await jobsCountByQueue(db, { schema: this.options.schema, tenantId, queue })
      const now = Date.now()
      const since = new Date(now - windowMs)
      const dayAgo = new Date(now - DAY_MS)
      const done = state?.rolled_up_to
        ? await this.finishedFromRollups(db, state, { queue, since, dayAgo })
        : await historyCountByQueue(db, { schema: this.options.schema, tenantId, queue, since, dayAgo })
      const byQueue = new Map<string, QueueStats>()
      const entry = (q: string): QueueStats => {
        let e = byQueue.get(q)
        if (!e) {
          e = { queue: q, pending: 0, scheduled: 0, running: 0, retrying: 0, waiting: 0, completed: 0, failed: 0, cancelled: 0, oldestPendingAgeMs: null, failedLast24h: 0, lastFailureAt: null }
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
          waiting: r.waiting,
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
      const all = [...byQueue.values()]
      if (fresh) for (const e of all) e.liveCountsAt = snapshotAt!
      return all.sort((a, b) => (a.queue < b.queue ? -1 : a.queue > b.queue ? 1 : 0))
    })
  }

  /** Completed, failed and cancelled per minute, hour or day over [from, to), with empty buckets as zeros. */
  async histogram(options: WithTenant<HistogramOptions>): Promise<HistogramPoint[]> {
    const { from, to, bucket } = options
    validateDate('from', from)
    validateDate('to', to)
    if (to <= from) throw new PgQueueValidationError('to', 'must be after from', to)
    // Own keys only: `in` would accept inherited names such as 'constructor' and pass them to SQL.
    if (typeof bucket !== 'string' || !Object.hasOwn(BUCKET_MS, bucket)) throw new PgQueueValidationError('bucket', "must be 'minute', 'hour' or 'day'", bucket)
    if ((to.getTime() - from.getTime()) / BUCKET_MS[bucket] > MAX_BUCKETS) {
      throw new PgQueueValidationError('bucket', `gives more than ${MAX_BUCKETS} buckets over this range; use a larger bucket`, bucket)
    }
    const states = options.states ?? [...HISTORY_STATES]
    if (!Array.isArray(states) || states.length === 0 || states.some((s) => !HISTORY_STATES.includes(s))) {
      throw new PgQueueValidationError('states', 'must be a non-empty list of completed, failed, cancelled', states)
    }
    const queue = optionalQueue(options.queue)
    const exact = exactOption(options.exact)
    return this.run(options.tenantId, async (db, tenantId) => {
      const state = tenantId === undefined && !exact ? await this.rollupState(db) : undefined
      const { schema, timezone } = this.options
      const rows = state?.rolled_up_to
        ? await historyHistogramFromRollups(db, {
            schema, queue, from, to, bucket, timezone, states,
            plan: planWindow(from, to, {
              rolledUpTo: state.rolled_up_to,
              minutesFrom: state.minutes_from,
              hours: bucket !== 'minute' && hasWholeHourOffsets(timezone, from, to),
            }),
          })
        : await historyHistogram(db, { schema, tenantId, queue, from, to, bucket, timezone, states })
      return rows.map((r) => ({ at: r.at, completed: r.completed, failed: r.failed, cancelled: r.cancelled }))
    })
  }

  /** p50/p95/p99 of wait time (run_at to started_at) and run time (started_at to finished_at) per queue, in ms. */
  async latency(options: WithTenant<LatencyOptions> = {}): Promise<QueueLatency[]> {
    const windowMs = validateWindow('window', options.window ?? this.options.defaultWindowMs)
    const queue = optionalQueue(options.queue)
    const exact = exactOption(options.exact)
    return this.run(options.tenantId, async (db, tenantId) => {
      const since = new Date(Date.now() - windowMs)
      const state = tenantId === undefined && !exact ? await this.rollupState(db) : undefined
      if (state?.rolled_up_to) return this.latencyFromRollups(db, state, { queue, since })
      const rows = await historyLatencyByQueue(db, { schema: this.options.schema, tenantId, queue, since })
      const exactRows = rows.map((r) => ({ queue: r.queue, count: r.count, waitMs: percentiles(r.wait), runMs: percentiles(r.run) }))
      // Queues that dropped completed jobs in the window kept only histograms of them: their
      // percentiles come from history's durations and those histograms merged (as global calls do).
      const counted = await completionCountQueues(db, { schema: this.options.schema, tenantId, queue, since })
      if (counted.length === 0) return exactRows
      const merged = latencyFromBuckets(await historyLatencyBucketsRaw(db, { schema: this.options.schema, tenantId, queues: counted, since }))
      const mergedQueues = new Set(merged.map((m) => m.queue))
      return [...exactRows.filter((r) => !mergedQueues.has(r.queue)), ...merged]
        .sort((a, b) => (a.queue < b.queue ? -1 : a.queue > b.queue ? 1 : 0))
    })
  }

  /** Schedules: count, paused, next due run and last run, overall and per queue. */
  async schedules(options: { tenantId?: string } = {}): Promise<ScheduleStats> {
    return this.run(options.tenantId, async (db, tenantId) => {
      const rows = await schedulesSummaryByQueue(db, { schema: this.options.schema, tenantId })
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

  /**
   * The fair order's operator settings and what they do: weights (queue null: the tenant's weight in
   * every queue without its own), rate limits with the tokens their buckets hold now, the back-offs
   * still running, and each tenant's share of the jobs finished over the last `windowMs` (default one
   * minute, from history), of one tenant or all. Worker role or owner only: a tenant's user role may
   * not read them (PostgreSQL refuses with permission denied).
   */
  async fairness(options: { tenantId?: string; windowMs?: number } = {}): Promise<FairnessStats> {
    const tenantId = options.tenantId === undefined ? undefined : validateTenantId(options.tenantId)
    const windowMs = options.windowMs === undefined ? 60_000 : validateWindow('windowMs', options.windowMs)
    const only = tenantId === undefined ? {} : { tenantId }
    return this.conn.db.transaction().setAccessMode('read only').execute(async (trx) => {
      const rows = await fairnessSettings(trx, this.options.schema, only)
      const limits = await rateLimitsWithTokens(trx, this.options.schema, only)
      const finished = await historyCountByTenant(trx, this.options.schema, { since: new Date(Date.now() - windowMs) })
      const total = finished.reduce((n, r) => n + r.jobs, 0)
      return {
        weights: rows.filter((r) => r.kind === 'weight').map((r) => ({ tenantId: r.tenant_id, queue: r.queue === '' ? null : r.queue, weight: r.weight! })),
        backOffs: rows.filter((r) => r.kind === 'back-off').map((r) => ({ tenantId: r.tenant_id, queue: r.queue, until: r.until! })),
        rateLimits: limits.map((r) => ({ tenantId: r.tenant_id === '' ? null : r.tenant_id, queue: r.queue, capacity: r.capacity, ratePerSec: r.rate, tokens: r.tokens })),
        shares: finished
          .filter((r) => tenantId === undefined || r.tenant_id === tenantId)
          .map((r) => ({ tenantId: r.tenant_id, jobs: r.jobs, share: total === 0 ? 0 : r.jobs / total })),
        windowMs,
      }
    })
  }

  /** The rollup state, or undefined when this role may not read it (the user role) or the schema predates it. */
  private async rollupState(db: Kysely<Database>): Promise<RollupStateRow | undefined> {
    // Checked, not caught: an error would abort the surrounding transaction. A yes is remembered.
    if (!this.rollupsReadable) {
      this.rollupsReadable = await rollupStateReadable(db, { schema: this.options.schema })
      if (!this.rollupsReadable) return undefined
    }
    return rollupStateRead(db, { schema: this.options.schema })
  }

  /**
   * Finished counts since `since`, failures since `dayAgo` and the latest failure since the earlier of
   * the two, from rollups plus raw edges: one read per distinct start.
   */
  private async finishedFromRollups(
    db: Kysely<Database>,
    state: RollupStateRow,
    p: { queue: string | undefined; since: Date; dayAgo: Date },
  ): Promise<HistoryCountRow[]> {
    const coverage = { rolledUpTo: state.rolled_up_to!, minutesFrom: state.minutes_from, hours: true }
    const read = (from: Date) => historyCountByQueueFromRollups(db, { schema: this.options.schema, queue: p.queue, plan: planWindow(from, null, coverage) })
    const early = p.since < p.dayAgo ? p.since : p.dayAgo
    const wide = await read(early)
    const narrow = p.since.getTime() === p.dayAgo.getTime() ? wide : await read(early === p.since ? p.dayAgo : p.since)
    const window = early === p.since ? wide : narrow
    const day = early === p.dayAgo ? wide : narrow
    const byQueue = new Map<string, HistoryCountRow>()
    for (const r of wide) byQueue.set(r.queue, { queue: r.queue, completed: 0, failed: 0, cancelled: 0, failed_last_24h: 0, last_failure_at: r.last_failure_at })
    for (const r of window) Object.assign(byQueue.get(r.queue)!, { completed: r.completed, failed: r.failed, cancelled: r.cancelled })
    for (const r of day) byQueue.get(r.queue)!.failed_last_24h = r.failed
    return [...byQueue.values()]
  }

  /** Latency per queue from merged log-bucket histograms (rollups plus raw edges). */
  private async latencyFromRollups(db: Kysely<Database>, state: RollupStateRow, p: { queue: string | undefined; since: Date }): Promise<QueueLatency[]> {
    const plan = planWindow(p.since, null, { rolledUpTo: state.rolled_up_to!, minutesFrom: state.minutes_from, hours: true })
    return latencyFromBuckets(await historyLatencyBucketsFromRollups(db, { schema: this.options.schema, queue: p.queue, plan }))
  }

  /** Closes the pool when it was created from a URL. */
  async close(): Promise<void> {
    await this.conn.close()
  }

  /**
   * Runs fn for one tenant in a transaction whose tenant is set first by its own statement (a CTE
   * setting it would not be safe: the scan may run first), or across tenants in a read-only
   * repeatable-read transaction: the rollup watermark and the rollup rows read after it must come from
   * one snapshot, or a rollup committed in between would count the rows after the old watermark twice.
   */
  private async run<T>(tenantId: string | undefined, fn: (db: Kysely<Database>, tenantId: string | undefined) => Promise<T>): Promise<T> {
    if (tenantId === undefined) {
      return this.conn.db.transaction().setIsolationLevel('repeatable read').setAccessMode('read only').execute(async (trx) => {
        await jitOffSetLocal(trx)
        return fn(trx, undefined)
      })
    }
    const tenant = validateTenantId(tenantId)
    return withTenantTransaction(this.conn.db, this.options.tenantKey, tenant, (trx) => fn(trx, tenant))
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

function exactOption(exact: unknown): boolean {
  if (exact !== undefined && typeof exact !== 'boolean') throw new PgQueueValidationError('exact', 'must be a boolean', exact)
  return exact === true
}

function optionalQueue(queue: unknown): string | undefined {
  return queue === undefined ? undefined : validateName('queue', queue, LIMITS.queueName)
}

/** Latency per queue, sorted by queue, from bucket rows (latency_bucket() index, waits, runs). */
function latencyFromBuckets(rows: LatencyBucketRow[]): QueueLatency[] {
  const byQueue = new Map<string, { wait: number[]; run: number[] }>()
  for (const r of rows) {
    let h = byQueue.get(r.queue)
    if (!h) byQueue.set(r.queue, (h = { wait: new Array<number>(LATENCY_BUCKET_COUNT).fill(0), run: new Array<number>(LATENCY_BUCKET_COUNT).fill(0) }))
    h.wait[r.i] = r.wait
    h.run[r.i] = r.run
  }
  const fromHistogram = (counts: number[]): Percentiles => ({ p50: latencyPercentile(counts, 0.5), p95: latencyPercentile(counts, 0.95), p99: latencyPercentile(counts, 0.99) })
  return [...byQueue.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([queue, h]) => ({ queue, count: h.wait.reduce((a, b) => a + b, 0), waitMs: fromHistogram(h.wait), runMs: fromHistogram(h.run) }))
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
