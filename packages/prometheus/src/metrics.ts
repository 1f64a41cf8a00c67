import { Counter, Gauge, type Metric, type Registry } from 'prom-client'
import { connect, type Connectable, type Connection } from '@pgqueue/core/internal'
import { Stats } from '@pgqueue/stats'
import { resolvePrometheusOptions, type PrometheusOptions, type ResolvedPrometheusOptions } from './options.js'
import { jobsCountByTenantQueue } from './queries/jobs.js'
import { rollupMinutesSince } from './queries/rollups.js'
import { addInto, RollupHistogram } from './rollup-histogram.js'

/** What a Scheduler emits after a round that changed something (its `round` event). */
export interface SchedulerLike {
  on(event: 'round', listener: (stats: { rescued: number; failed: number; promoted: number; held: number; released: number }) => void): unknown
  off(event: 'round', listener: (...args: any[]) => void): unknown
}

/** What a ScheduleRunner emits after a batch that claimed schedules (its `batch` event). */
export interface ScheduleRunnerLike {
  on(event: 'batch', listener: (result: { fired: number; skipped: number; invalid: number; deferred: number }) => void): unknown
  off(event: 'batch', listener: (...args: any[]) => void): unknown
}

type JobRef = { job: { queue: string; tenantId: string } }

/** The Worker events counted: job:completed, job:failed (with willRetry), job:cancelled, job:lost. */
export interface WorkerLike {
  on(event: 'job:completed' | 'job:cancelled' | 'job:lost', listener: (event: JobRef) => void): unknown
  on(event: 'job:failed', listener: (event: JobRef & { willRetry: boolean }) => void): unknown
  off(event: string, listener: (...args: any[]) => void): unknown
}

interface LiveRow {
  labels: Record<string, string>
  pending: number
  scheduled: number
  running: number
  retrying: number
  waiting: number
  oldestPendingAgeMs: number | null
}

const MINUTE_MS = 60_000

/**
 * pgqueue's metrics in a prom-client Registry, read from the database when scraped (one refresh per
 * `cacheMs` however many metrics and scrapers ask) and from the components you hand to observe*().
 *
 * From the database, for every process and node:
 * - `pgqueue_jobs{queue,state}` (pending, scheduled, running, waiting), `pgqueue_jobs_retrying{queue}` and
 *   `pgqueue_oldest_pending_age_seconds{queue}`: the live counts of Stats.queues() (Maintenance's
 *   snapshot when fresh, else a count); with `tenantLabel`, per tenant from a scan of the live table.
 * - `pgqueue_jobs_finished_total{queue,state}` (completed, failed, cancelled), and the histograms
 *   `pgqueue_job_wait_seconds{queue}` (due to started: pickup) and `pgqueue_job_run_seconds{queue}`:
 *   from Maintenance's minute rollups, counted from the first scrape on (a counter starts at zero
 *   with the process, as Prometheus expects). They move only while Maintenance's rollup task runs,
 *   and lag by its safety lag (2 minutes by default).
 *
 * From components in this process (observeWorker, observeScheduler, observeScheduleRunner):
 * `pgqueue_worker_runs_total{queue,outcome}` (completed, failed, retried, cancelled, lost),
 * `pgqueue_scheduler_rounds_total`, `pgqueue_lease_rescues_total{outcome}` (rescued, failed),
 * `pgqueue_scheduler_jobs_total{action}` (promoted, held, released), `pgqueue_schedule_runner_batches_total`
 * and `pgqueue_schedules_total{outcome}` (fired, skipped, invalid, deferred). Rounds and batches that
 * changed nothing emit no event and are not counted.
 *
 * A failed refresh keeps the last numbers, counts `pgqueue_collector_errors_total` and never fails the scrape.
 */
export class PgQueueMetrics {
  readonly options: ResolvedPrometheusOptions
  private readonly conn: Connection
  private readonly stats: Stats
  private readonly registry: Registry
  private readonly names: string[] = []
  private readonly detach: (() => void)[] = []
  private refreshedAt = Number.NEGATIVE_INFINITY
  private refreshing: Promise<void> | undefined
  private live: LiveRow[] = []
  /** Where the next rollup read starts; null until the first scrape has read the watermark. */
  private rollupFrom: Date | null = null
  private readonly startedAt = new Date(Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS)
  private readonly waitHist = new Map<string, { labels: Record<string, string>; counts: number[] }>()
  private readonly runHist = new Map<string, { labels: Record<string, string>; counts: number[] }>()
  private readonly finished: Counter<'queue' | 'state'>
  private readonly errors: Counter
  private readonly workerRuns: Counter<string>
  private readonly schedulerRounds: Counter
  private readonly leaseRescues: Counter<'outcome'>
  private readonly schedulerJobs: Counter<'action'>
  private readonly runnerBatches: Counter
  private readonly schedules: Counter<'outcome'>

  private constructor(registry: Registry, target: Connectable, options: ResolvedPrometheusOptions) {
    this.options = options
    this.registry = registry
    this.conn = connect(target, { max: options.poolSize, applicationName: 'pgqueue-prometheus' })
    this.stats = Stats.create(this.conn.pool, { schema: options.schema, workerRole: options.workerRole, userRole: options.userRole })
    const p = options.prefix
    const liveLabels = options.tenantLabel ? ['queue', 'tenant'] : ['queue']
    const self = this
    const registers = [registry]
    const track = <T>(name: string, metric: T): T => {
      this.names.push(name)
      return metric
    }
    track(`${p}jobs`, new Gauge({
      name: `${p}jobs`,
      help: 'Live jobs by state: pending (due and waiting, held included), scheduled (waiting for run_at), running, waiting (flow jobs waiting for their parents)',
      labelNames: [...liveLabels, 'state'],
      registers,
      async collect() {
        await self.refresh()
        this.reset()
        for (const r of self.live) {
          this.set({ ...r.labels, state: 'pending' }, r.pending)
          this.set({ ...r.labels, state: 'scheduled' }, r.scheduled)
          this.set({ ...r.labels, state: 'running' }, r.running)
          this.set({ ...r.labels, state: 'waiting' }, r.waiting)
        }
      },
    }))
    track(`${p}jobs_retrying`, new Gauge({
      name: `${p}jobs_retrying`,
      help: 'Live jobs waiting after at least one attempt (also counted as pending or scheduled)',
      labelNames: liveLabels,
      registers,
      async collect() {
        await self.refresh()
        this.reset()
        for (const r of self.live) this.set(r.labels, r.retrying)
      },
    }))
    track(`${p}oldest_pending_age_seconds`, new Gauge({
      name: `${p}oldest_pending_age_seconds`,
      help: 'Seconds since the run_at of the oldest due waiting job; absent when nothing is due',
      labelNames: liveLabels,
      registers,
      async collect() {
        await self.refresh()
        this.reset()
        for (const r of self.live) if (r.oldestPendingAgeMs !== null) this.set(r.labels, r.oldestPendingAgeMs / 1000)
      },
    }))
    this.finished = track(`${p}jobs_finished_total`, new Counter({
      name: `${p}jobs_finished_total`,
      help: 'Jobs finished since this collector started, by outcome (from the minute rollups; all nodes)',
      labelNames: ['queue', 'state'] as const,
      registers,
      async collect() {
        await self.refresh()
      },
    }))
    for (const [name, help, hist] of [
      [`${p}job_wait_seconds`, 'Due to started (pickup) of jobs that ran, since this collector started (from the rollups; exact bucket counts, estimated sum)', this.waitHist],
      [`${p}job_run_seconds`, 'Started to finished (the last attempt) of jobs that ran, since this collector started (from the rollups; exact bucket counts, estimated sum)', this.runHist],
    ] as const) {
      const metric = new RollupHistogram(name, help, async () => {
        await this.refresh()
        return hist
      })
      // prom-client's Registry reads get(), reset() and the fields this object has.
      registry.registerMetric(metric as unknown as Metric)
      this.names.push(name)
    }
    this.errors = track(`${p}collector_errors_total`, new Counter({
      name: `${p}collector_errors_total`,
      help: 'Refreshes of the pgqueue collector that failed (the last numbers were kept)',
      registers,
      // Metrics are read in parallel: wait for the refresh this scrape started, so its failure counts now.
      async collect() {
        await self.refresh()
      },
    }))
    this.workerRuns = track(`${p}worker_runs_total`, new Counter({
      name: `${p}worker_runs_total`,
      help: 'Runs of observed Workers in this process, by outcome: completed, failed, retried (failed, will run again), cancelled, lost (lease lost)',
      labelNames: [...liveLabels, 'outcome'],
      registers,
    }))
    this.schedulerRounds = track(`${p}scheduler_rounds_total`, new Counter({ name: `${p}scheduler_rounds_total`, help: 'Rounds of observed Schedulers in this process that changed something', registers }))
    this.leaseRescues = track(`${p}lease_rescues_total`, new Counter({ name: `${p}lease_rescues_total`, help: 'Expired leases handled by observed Schedulers: rescued (will run again) or failed (no attempts left)', labelNames: ['outcome'] as const, registers }))
    this.schedulerJobs = track(`${p}scheduler_jobs_total`, new Counter({ name: `${p}scheduler_jobs_total`, help: 'Jobs moved by observed Schedulers: promoted (due, into the fair order), held (paused or capped), released', labelNames: ['action'] as const, registers }))
    this.runnerBatches = track(`${p}schedule_runner_batches_total`, new Counter({ name: `${p}schedule_runner_batches_total`, help: 'Batches of observed ScheduleRunners in this process that claimed due schedules', registers }))
    this.schedules = track(`${p}schedules_total`, new Counter({ name: `${p}schedules_total`, help: 'Due schedules handled by observed ScheduleRunners: fired, skipped (missed), invalid, deferred', labelNames: ['outcome'] as const, registers }))
  }

  /**
   * Registers pgqueue's metrics into `registry` (throws if one of their names is taken) and reads them
   * from the database at `target` (worker role: it sees every tenant) when the registry is scraped.
   */
  static register(registry: Registry, target: Connectable, options: PrometheusOptions = {}): PgQueueMetrics {
    return new PgQueueMetrics(registry, target, resolvePrometheusOptions(options))
  }

  /** Counts the runs of a Worker of this process (`pgqueue_worker_runs_total`). */
  observeWorker(worker: WorkerLike): this {
    const labels = (e: JobRef): Record<string, string> => (this.options.tenantLabel ? { queue: e.job.queue, tenant: e.job.tenantId } : { queue: e.job.queue })
    const completed = (e: JobRef) => this.workerRuns.inc({ ...labels(e), outcome: 'completed' })
    const failed = (e: JobRef & { willRetry: boolean }) => this.workerRuns.inc({ ...labels(e), outcome: e.willRetry ? 'retried' : 'failed' })
    const cancelled = (e: JobRef) => this.workerRuns.inc({ ...labels(e), outcome: 'cancelled' })
    const lost = (e: JobRef) => this.workerRuns.inc({ ...labels(e), outcome: 'lost' })
    worker.on('job:completed', completed)
    worker.on('job:failed', failed)
    worker.on('job:cancelled', cancelled)
    worker.on('job:lost', lost)
    this.detach.push(() => {
      worker.off('job:completed', completed)
      worker.off('job:failed', failed)
      worker.off('job:cancelled', cancelled)
      worker.off('job:lost', lost)
    })
    return this
  }

  /** Counts the rounds, lease rescues and moved jobs of a Scheduler of this process. */
  observeScheduler(scheduler: SchedulerLike): this {
    const round = (s: { rescued: number; failed: number; promoted: number; held: number; released: number }) => {
      this.schedulerRounds.inc()
      if (s.rescued > 0) this.leaseRescues.inc({ outcome: 'rescued' }, s.rescued)
      if (s.failed > 0) this.leaseRescues.inc({ outcome: 'failed' }, s.failed)
      if (s.promoted > 0) this.schedulerJobs.inc({ action: 'promoted' }, s.promoted)
      if (s.held > 0) this.schedulerJobs.inc({ action: 'held' }, s.held)
      if (s.released > 0) this.schedulerJobs.inc({ action: 'released' }, s.released)
    }
    scheduler.on('round', round)
    this.detach.push(() => scheduler.off('round', round))
    return this
  }

  /** Counts the batches and handled schedules of a ScheduleRunner of this process. */
  observeScheduleRunner(runner: ScheduleRunnerLike): this {
    const batch = (r: { fired: number; skipped: number; invalid: number; deferred: number }) => {
      this.runnerBatches.inc()
      for (const outcome of ['fired', 'skipped', 'invalid', 'deferred'] as const) if (r[outcome] > 0) this.schedules.inc({ outcome }, r[outcome])
    }
    runner.on('batch', batch)
    this.detach.push(() => runner.off('batch', batch))
    return this
  }

  /**
   * Reads the database now unless the last refresh is younger than cacheMs; concurrent callers share
   * one refresh. Never rejects: a failure counts `collector_errors_total` and keeps the last numbers.
   */
  async refresh(): Promise<void> {
    if (performance.now() - this.refreshedAt < this.options.cacheMs) return
    this.refreshing ??= this.read()
      .catch(() => this.errors.inc())
      .finally(() => {
        this.refreshedAt = performance.now()
        this.refreshing = undefined
      })
    return this.refreshing
  }

  private async read(): Promise<void> {
    const schema = this.options.schema
    const [live, rollups] = await Promise.all([
      this.options.tenantLabel ? this.readLiveByTenant() : this.readLive(),
      rollupMinutesSince(this.conn.db, schema, this.rollupFrom),
    ])
    this.live = live
    // The first watermark seen is where counting starts; rows before it happened before this collector.
    if (this.rollupFrom === null) {
      this.rollupFrom = rollups.watermark ?? this.startedAt
      return
    }
    for (const r of rollups.rows) {
      for (const state of ['completed', 'failed', 'cancelled'] as const) if (r[state] > 0) this.finished.inc({ queue: r.queue, state }, r[state])
      this.accumulate(this.waitHist, r.queue, r.wait_hist)
      this.accumulate(this.runHist, r.queue, r.run_hist)
    }
    if (rollups.watermark !== null && rollups.watermark > this.rollupFrom) this.rollupFrom = rollups.watermark
  }

  private accumulate(into: Map<string, { labels: Record<string, string>; counts: number[] }>, queue: string, counts: readonly number[]): void {
    let entry = into.get(queue)
    if (!entry) {
      entry = { labels: { queue }, counts: [] }
      into.set(queue, entry)
    }
    addInto(entry.counts, counts)
  }

  private async readLive(): Promise<LiveRow[]> {
    // A window of one minute: only the live counts are used, and the finished part is then cheapest.
    const rows = await this.stats.queues({ window: MINUTE_MS })
    return rows.map((q) => ({ labels: { queue: q.queue }, pending: q.pending, scheduled: q.scheduled, running: q.running, retrying: q.retrying, waiting: q.waiting, oldestPendingAgeMs: q.oldestPendingAgeMs }))
  }

  private async readLiveByTenant(): Promise<LiveRow[]> {
    const rows = await jobsCountByTenantQueue(this.conn.db, this.options.schema)
    return rows.map((r) => ({
      labels: { queue: r.queue, tenant: r.tenant_id },
      pending: r.pending,
      scheduled: r.scheduled,
      running: r.running,
      retrying: r.retrying,
      waiting: r.waiting,
      oldestPendingAgeMs: r.oldest_pending_age_ms === null ? null : Math.max(0, r.oldest_pending_age_ms),
    }))
  }

  /** Removes the metrics from the registry, stops observing components and closes the pool it opened. */
  async close(): Promise<void> {
    for (const d of this.detach.splice(0)) d()
    for (const name of this.names.splice(0)) this.registry.removeSingleMetric(name)
    await this.refreshing
    await this.conn.close()
  }
}

/** Registers pgqueue's metrics into a prom-client Registry; see PgQueueMetrics. */
export function registerPgQueueMetrics(registry: Registry, target: Connectable, options: PrometheusOptions = {}): PgQueueMetrics {
  return PgQueueMetrics.register(registry, target, options)
}
