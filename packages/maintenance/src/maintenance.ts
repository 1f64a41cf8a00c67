import { checkInstallation, connect, LoopService, PgQueueError, type Connectable, type Connection, type ServiceEvents } from '@pgqueue/core/internal'
import { resolveMaintenanceOptions, type MaintenanceOptions, type MaintenanceTaskName, type ResolvedMaintenanceOptions } from './options.js'
import type { TaskContext } from './tasks/context.js'
import { runPartitionsTask, type PartitionsResult } from './tasks/history-partitions.js'
import { runRetentionTask, type RetentionResult } from './tasks/history-retention.js'
import { runLiveTableVacuumTask, type TableHealth, type VacuumResult } from './tasks/live-table-vacuum.js'
import { runOrphanedLeasesTask, type LeasesResult } from './tasks/orphaned-leases.js'
import { runStaleNodesTask, type NodesResult } from './tasks/stale-nodes.js'
import { runLiveCountsTask, type LiveCountsResult } from './tasks/live-counts.js'
import { runStatsRollupTask, type RollupResult } from './tasks/stats-rollup.js'

/** What one run did, task by task. A task absent from the report did not run (switched off, or not due). */
export interface MaintenanceReport {
  startedAt: Date
  durationMs: number
  partitions?: PartitionsResult
  retention?: RetentionResult
  nodes?: NodesResult
  leases?: LeasesResult
  vacuum?: VacuumResult
  rollup?: RollupResult
  liveCounts?: LiveCountsResult
  /** Tasks that failed; the other tasks still ran. */
  errors: { task: MaintenanceTaskName; error: Error }[]
}

/** Events of Maintenance, beside started/stopped/error. */
export interface MaintenanceEvents extends ServiceEvents {
  /** After every run that did something (runOnce(), or a loop iteration with a task due). */
  report: [report: MaintenanceReport]
  /** Each time the live table's health was read (every vacuumEveryMs in the loop). */
  tableHealth: [health: TableHealth]
}

/** One or more maintenance tasks failed; `report` holds what every task did. */
export class PgQueueMaintenanceError extends PgQueueError {
  readonly report: MaintenanceReport
  constructor(report: MaintenanceReport) {
    const first = report.errors[0]?.error
    super(`maintenance: ${report.errors.map((e) => `${e.task}: ${e.error.message}`).join('; ')}`, { cause: first })
    this.report = report
  }
}

const TASKS: readonly MaintenanceTaskName[] = ['partitions', 'retention', 'nodes', 'leases', 'vacuum', 'rollup', 'liveCounts']

/**
 * Maintenance keeps a long-lived installation healthy. It runs as the admin (the schema owner) and
 * any number of instances may run: every task try-locks its row of the owner-only `locks` table for
 * its transaction (VACUUM uses SKIP_LOCKED instead), so one instance does each task at a time and the others skip it.
 *
 * Tasks: history partitions ahead (and for rows that landed in the default partition), retention by
 * dropping expired partitions, stale node records, orphaned leases, and VACUUM (ANALYZE) of the live
 * table when dead tuples pile up, with a health report of that table; and, for global Stats, rollups
 * of finished jobs per minute and hour and a snapshot of live counts per queue.
 *
 * Use `start()`/`stop()` for a loop, `runOnce()` on an instance, or `Maintenance.runOnce(url)` from cron.
 */
export class Maintenance extends LoopService<MaintenanceEvents> {
  /** The options in force, defaults filled in. */
  readonly options: ResolvedMaintenanceOptions
  private readonly target: Connectable
  /** Open while started or running tasks; stop() and close() release it, the next use reopens it. */
  private open: { conn: Connection; ctx: TaskContext } | undefined
  private readonly nextAt = new Map<MaintenanceTaskName, number>()

  private constructor(target: Connectable, options: ResolvedMaintenanceOptions, logger: MaintenanceOptions['logger']) {
    const everyMs = [
      options.tasks.partitions || options.tasks.retention ? options.partitionsEveryMs : Infinity,
      options.tasks.nodes || options.tasks.leases ? options.housekeepingEveryMs : Infinity,
      options.tasks.vacuum ? options.vacuumEveryMs : Infinity,
      options.tasks.rollup ? options.rollupEveryMs : Infinity,
      options.tasks.liveCounts ? options.liveCountsEveryMs : Infinity,
    ]
    super({ name: 'maintenance', idleMs: Math.min(...everyMs.filter(Number.isFinite), options.partitionsEveryMs), ...(logger ? { logger } : {}) })
    this.options = options
    this.target = target
  }

  private get ctx(): TaskContext {
    this.assertOpen()
    if (this.open === undefined) {
      const conn = connect(this.target, { max: this.options.poolSize, applicationName: 'pgqueue-maintenance' })
      this.open = { conn, ctx: { db: conn.db, pool: conn.pool, options: this.options, logger: this.logger } }
    }
    return this.open.ctx
  }

  /** Checks the schema and the login's role before the loop starts (PgQueueSetupError says what to do). */
  protected override async onStart(): Promise<void> {
    await checkInstallation(this.ctx.pool, { schema: this.options.schema, component: 'Maintenance', accepted: ['owner'] })
  }

  /** Releases the pool pgqueue opened, so a stopped process exits at once. */
  protected override async onStop(): Promise<void> {
    const open = this.open
    this.open = undefined
    await open?.conn.close()
  }

  protected override async release(): Promise<void> {
    await this.onStop()
  }

  /** Creates a Maintenance over an admin URL or pool. Options are validated here (PgQueueValidationError). */
  static create(target: Connectable, options: MaintenanceOptions = {}): Maintenance {
    return new Maintenance(target, resolveMaintenanceOptions(options), options.logger)
  }

  /**
   * For cron: `Maintenance.create(target, options).runOnce()`, then close(); returns the report.
   * Throws PgQueueMaintenanceError (with the report) when a task failed; the other tasks still ran.
   */
  static async runOnce(target: Connectable, options: MaintenanceOptions = {}): Promise<MaintenanceReport> {
    const m = Maintenance.create(target, options)
    try {
      return await m.runOnce()
    } finally {
      await m.close()
    }
  }

  /**
   * Runs every enabled task once, now, whatever the intervals, and returns the report (also emitted
   * as 'report'). Throws PgQueueMaintenanceError (with the report) when a task failed.
   */
  async runOnce(): Promise<MaintenanceReport> {
    const report = await this.runTasks(TASKS.filter((t) => this.options.tasks[t]))
    if (report.errors.length > 0) throw new PgQueueMaintenanceError(report)
    return report
  }

  /** @deprecated Renamed runOnce(). */
  runNow(): Promise<MaintenanceReport> {
    return this.runOnce()
  }

  /** One loop iteration: the tasks whose interval has passed on the injected clock. */
  protected override async loopStep(): Promise<boolean> {
    const now = this.options.clock.now().getTime()
    const due = TASKS.filter((t) => this.options.tasks[t] && now >= (this.nextAt.get(t) ?? 0))
    if (due.length === 0) return false
    for (const t of due) this.nextAt.set(t, now + this.everyMs(t))
    const report = await this.runTasks(due)
    if (report.errors.length > 0) {
      // Failed tasks are retried on the next iteration, not after their full interval.
      for (const e of report.errors) this.nextAt.delete(e.task)
      throw new PgQueueMaintenanceError(report)
    }
    return false
  }

  private everyMs(task: MaintenanceTaskName): number {
    if (task === 'partitions' || task === 'retention') return this.options.partitionsEveryMs
    if (task === 'vacuum') return this.options.vacuumEveryMs
    if (task === 'rollup') return this.options.rollupEveryMs
    if (task === 'liveCounts') return this.options.liveCountsEveryMs
    return this.options.housekeepingEveryMs
  }

  private async runTasks(tasks: readonly MaintenanceTaskName[]): Promise<MaintenanceReport> {
    const startedAt = new Date()
    const t0 = performance.now()
    const report: MaintenanceReport = { startedAt, durationMs: 0, errors: [] }
    for (const task of tasks) {
      try {
        if (task === 'partitions') report.partitions = await runPartitionsTask(this.ctx)
        if (task === 'retention') report.retention = await runRetentionTask(this.ctx)
        if (task === 'nodes') report.nodes = await runStaleNodesTask(this.ctx)
        if (task === 'leases') report.leases = await runOrphanedLeasesTask(this.ctx)
        if (task === 'vacuum') {
          report.vacuum = await runLiveTableVacuumTask(this.ctx)
          if (report.vacuum.health) this.untypedEmit('tableHealth', report.vacuum.health)
        }
        if (task === 'rollup') report.rollup = await runStatsRollupTask(this.ctx)
        if (task === 'liveCounts') report.liveCounts = await runLiveCountsTask(this.ctx)
      } catch (err) {
        report.errors.push({ task, error: err instanceof Error ? err : new Error(String(err)) })
      }
    }
    report.durationMs = Math.round(performance.now() - t0)
    this.untypedEmit('report', report)
    return report
  }
}
