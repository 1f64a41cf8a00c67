import type { Command } from '@commander-js/extra-typings'
import { warningsLogger } from '@pgqueue/core/internal'
import { Maintenance, type MaintenanceReport } from '@pgqueue/maintenance'
import { ScheduleRunner } from '@pgqueue/schedule-runner'
import { Scheduler } from '@pgqueue/scheduler'
import { Worker, type WorkerOptions } from '@pgqueue/worker'
import { action } from '../action.js'
import { parsePositiveInt } from '../clients.js'
import type { CommandContext } from '../context.js'
import { EXIT, usageError } from '../errors.js'

/** A component the CLI runs until SIGTERM or SIGINT. */
export interface Runnable {
  start(): Promise<void>
  stop(): Promise<void>
  on(event: 'error', listener: (error: Error) => void): unknown
}

/**
 * Starts `component`, then waits for SIGTERM or SIGINT and stops it (a Worker drains its jobs in
 * flight). A second signal exits at once. Errors the component reports while running go to stderr
 * (it keeps running and retries, as it does in any process).
 */
export async function runUntilSignal(ctx: CommandContext, name: string, component: Runnable, info: Record<string, unknown>): Promise<number> {
  // Listen before starting: a signal that arrives while the component starts stops it once started.
  const signal = new Promise<NodeJS.Signals>((resolve) => {
    const once = (s: NodeJS.Signals) => {
      process.off('SIGTERM', once)
      process.off('SIGINT', once)
      process.once('SIGTERM', () => process.exit(143))
      process.once('SIGINT', () => process.exit(130))
      resolve(s)
    }
    process.on('SIGTERM', once)
    process.on('SIGINT', once)
  })
  component.on('error', (error) => ctx.out.note(`pgqueue ${name}: ${error.message}`))
  await component.start()
  const event = (what: string, extra: Record<string, unknown> = {}) =>
    ctx.out.result({ event: what, component: name, ...info, ...extra, at: new Date() }, () => ctx.out.line(`${name} ${what}${Object.keys(info).length > 0 ? ` (${Object.entries(info).map(([k, v]) => `${k} ${String(v)}`).join(', ')})` : ''}`))
  event('started')
  const received = await signal
  if (!ctx.out.json) ctx.out.note(`${received}: stopping ${name}...`)
  await component.stop()
  event('stopped', { signal: received })
  return EXIT.ok
}

function list(value: string): string[] {
  return value.split(',').map((s) => s.trim()).filter((s) => s !== '')
}

/** `pgqueue worker|scheduler|schedule-runner|maintenance`: run a component from the config file. */
export function registerRun(program: Command): void {
  program
    .command('worker')
    .description("run a Worker with the config file's worker.handlers and worker.options, until SIGTERM/SIGINT (it drains jobs in flight)")
    .option('--node-id <id>', 'this Worker node id (default: host-pid-random)')
    .option('--queues <list>', 'comma-separated queues to serve (default: every queue with work)')
    .option('--concurrency <n>', 'jobs run at once')
    .action(
      action(async (ctx, flags: { nodeId?: string; queues?: string; concurrency?: string }) => {
        const conf = ctx.settings.config.worker
        if (conf === undefined || conf.handlers === undefined) {
          throw usageError(`pgqueue worker needs a config file exporting worker.handlers (${ctx.settings.configPath ? `${ctx.settings.configPath} has none` : 'pass --config, set PGQUEUE_CONFIG, or add pgqueue.config.mjs'})`)
        }
        const options: WorkerOptions = {
          logger: warningsLogger,
          ...conf.options,
          ...(ctx.settings.schema !== undefined ? { schema: ctx.settings.schema } : {}),
          ...(flags.nodeId !== undefined ? { nodeId: flags.nodeId } : {}),
          ...(flags.queues !== undefined ? { queues: list(flags.queues) } : {}),
          ...(flags.concurrency !== undefined ? { concurrency: parsePositiveInt(flags.concurrency, '--concurrency') } : {}),
        }
        const worker = Worker.create(ctx.url, options, conf.handlers)
        return runUntilSignal(ctx, 'worker', worker, { nodeId: worker.nodeId })
      }),
    )
  program
    .command('scheduler')
    .description('run a Scheduler (promotes due jobs, releases held ones, rescues expired leases) until SIGTERM/SIGINT')
    .action(
      action(async (ctx, _flags: object) => {
        const scheduler = Scheduler.create(ctx.url, { logger: warningsLogger, ...ctx.settings.config.scheduler, ...(ctx.settings.schema !== undefined ? { schema: ctx.settings.schema } : {}) })
        return runUntilSignal(ctx, 'scheduler', scheduler, { nodeId: scheduler.options.nodeId })
      }),
    )
  program
    .command('schedule-runner')
    .description('run a ScheduleRunner (turns due schedules into jobs) until SIGTERM/SIGINT')
    .action(
      action(async (ctx, _flags: object) => {
        const runner = ScheduleRunner.create(ctx.url, { logger: warningsLogger, ...ctx.settings.config.scheduleRunner, ...(ctx.settings.schema !== undefined ? { schema: ctx.settings.schema } : {}) })
        return runUntilSignal(ctx, 'schedule-runner', runner, {})
      }),
    )
  program
    .command('maintenance')
    .description('run Maintenance as the schema owner (partitions, retention, housekeeping, rollups) until SIGTERM/SIGINT, or once with --once')
    .option('--once', 'run every task once, print the report and exit (for cron)')
    .action(
      action(async (ctx, flags: { once?: boolean }) => {
        const options = { logger: warningsLogger, ...ctx.settings.config.maintenance, ...ctx.names }
        if (flags.once) {
          const report = await Maintenance.runOnce(ctx.url, options)
          ctx.out.result(report, () => printReport(ctx, report))
          return EXIT.ok
        }
        return runUntilSignal(ctx, 'maintenance', Maintenance.create(ctx.url, options), {})
      }),
    )
}

function printReport(ctx: CommandContext, r: MaintenanceReport): void {
  const o = ctx.out
  o.line(`maintenance ran in ${Math.round(r.durationMs)} ms`)
  if (r.partitions) o.line(`  partitions: ${JSON.stringify(r.partitions)}`)
  if (r.retention) o.line(`  retention: ${JSON.stringify(r.retention)}`)
  if (r.nodes) o.line(`  nodes: ${JSON.stringify(r.nodes)}`)
  if (r.leases) o.line(`  leases: ${JSON.stringify(r.leases)}`)
  if (r.vacuum) o.line(`  vacuum: ${JSON.stringify(r.vacuum)}`)
  if (r.rollup) o.line(`  rollup: ${JSON.stringify(r.rollup)}`)
  if (r.liveCounts) o.line(`  live counts: ${JSON.stringify(r.liveCounts)}`)
}
