import type { Command } from '@commander-js/extra-typings'
import type { QueueLatency, QueueStats } from '@pgqueue/stats'
import { action } from '../action.js'
import { openStats, parseDuration } from '../clients.js'
import type { CommandContext } from '../context.js'
import { EXIT } from '../errors.js'

interface Flags {
  tenant?: string
  queue?: string
  window?: string
}

/** `pgqueue queues` and `pgqueue stats`: counts per queue (and latencies and schedules for stats). */
export function registerQueues(program: Command): void {
  program
    .command('queues')
    .description('live and finished counts per queue (all tenants with the worker role, or one with --tenant)')
    .option('--tenant <id>', 'only this tenant')
    .option('--queue <name>', 'only this queue')
    .option('--window <duration>', 'finished counts over this window (e.g. 1h, 24h)', '24h')
    .action(action(async (ctx, flags: Flags) => queues(ctx, flags)))
  program
    .command('stats')
    .description('counts, wait and run latencies per queue, and schedules (all tenants, or one with --tenant)')
    .option('--tenant <id>', 'only this tenant')
    .option('--queue <name>', 'only this queue')
    .option('--window <duration>', 'window of finished counts and latencies', '1h')
    .action(action(async (ctx, flags: Flags) => stats(ctx, flags)))
}

function scope(flags: Flags) {
  return { ...(flags.queue !== undefined ? { queue: flags.queue } : {}), window: parseDuration(flags.window ?? '24h', '--window') }
}

async function readQueues(ctx: CommandContext, flags: Flags): Promise<QueueStats[]> {
  const stats = openStats(ctx)
  return flags.tenant !== undefined ? stats.forTenant(flags.tenant).queues(scope(flags)) : stats.queues(scope(flags))
}

const QUEUE_COLUMNS = ['queue', 'pending', 'scheduled', 'running', 'retrying', 'completed', 'failed', 'cancelled', 'oldestPendingAgeMs'] as const

async function queues(ctx: CommandContext, flags: Flags): Promise<number> {
  const rows = await readQueues(ctx, flags)
  ctx.out.result(rows, () => ctx.out.table(rows as unknown as Record<string, unknown>[], QUEUE_COLUMNS))
  return EXIT.ok
}

async function stats(ctx: CommandContext, flags: Flags): Promise<number> {
  const s = openStats(ctx)
  const scoped = flags.tenant !== undefined ? s.forTenant(flags.tenant) : s
  const options = scope(flags)
  const [queueRows, latency, schedules] = await Promise.all([scoped.queues(options), scoped.latency(options), scoped.schedules()])
  ctx.out.result({ windowMs: options.window, queues: queueRows, latency, schedules }, () => {
    ctx.out.table(queueRows as unknown as Record<string, unknown>[], QUEUE_COLUMNS)
    ctx.out.line('')
    ctx.out.table(latency.map(latencyRow), ['queue', 'count', 'wait p50', 'wait p95', 'wait p99', 'run p50', 'run p95', 'run p99'])
    ctx.out.line('')
    ctx.out.line(`schedules: ${schedules.total} (${schedules.paused} paused), next due ${schedules.nextDueAt ? schedules.nextDueAt.toISOString() : '-'}`)
  })
  return EXIT.ok
}

function latencyRow(l: QueueLatency): Record<string, unknown> {
  const ms = (v: number) => `${Math.round(v)} ms`
  return {
    queue: l.queue,
    count: l.count,
    'wait p50': ms(l.waitMs.p50),
    'wait p95': ms(l.waitMs.p95),
    'wait p99': ms(l.waitMs.p99),
    'run p50': ms(l.runMs.p50),
    'run p95': ms(l.runMs.p95),
    'run p99': ms(l.runMs.p99),
  }
}
