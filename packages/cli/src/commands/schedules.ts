import type { Command } from '@commander-js/extra-typings'
import type { Schedule } from '@pgqueue/producer'
import { action } from '../action.js'
import { openProducer, parsePositiveInt } from '../clients.js'
import type { CommandContext } from '../context.js'
import { CliError, EXIT } from '../errors.js'

/** `pgqueue schedules list|pause|resume|trigger --tenant <id>`. */
export function registerSchedules(program: Command): void {
  const schedules = program.command('schedules').description("one tenant's schedules: list, pause, resume, trigger")
  schedules
    .command('list')
    .description('schedules of a tenant, with their next and last run')
    .requiredOption('--tenant <id>', 'the tenant')
    .option('--queue <name>', 'only this queue')
    .option('--limit <n>', 'page size, 1-1000', '100')
    .option('--cursor <cursor>', 'the next page, from the previous list')
    .action(
      action(async (ctx, flags: { tenant: string; queue?: string; limit: string; cursor?: string }) => {
        const page = await openProducer(ctx)
          .schedules.withTenant(flags.tenant)
          .list({ limit: parsePositiveInt(flags.limit, '--limit'), ...(flags.queue !== undefined ? { queue: flags.queue } : {}), ...(flags.cursor !== undefined ? { cursor: flags.cursor } : {}) })
        ctx.out.result(page, () => {
          ctx.out.table(page.items.map(row), ['key', 'queue', 'type', 'schedule', 'paused', 'nextRunAt', 'lastRunAt'])
          if (page.nextCursor) ctx.out.line(`next page: --cursor ${page.nextCursor}`)
        })
        return EXIT.ok
      }),
    )
  const byKey = (name: string, description: string, run: (ctx: CommandContext, key: string, tenant: string) => Promise<number>) =>
    schedules
      .command(name)
      .description(description)
      .argument('<key>', 'schedule key')
      .requiredOption('--tenant <id>', 'the tenant')
      .action(action(async (ctx, key: string, flags: { tenant: string }) => run(ctx, key, flags.tenant)))
  byKey('pause', 'stop a schedule from firing until resumed', async (ctx, key, tenant) => done(ctx, key, tenant, await openProducer(ctx).schedules.withTenant(tenant).pause(key), 'paused'))
  byKey('resume', 'resume a paused schedule from its next due time after now', async (ctx, key, tenant) => done(ctx, key, tenant, await openProducer(ctx).schedules.withTenant(tenant).resume(key), 'resumed'))
  byKey('trigger', "push one job from the schedule's template now (its next run is unchanged)", trigger)
}

function row(s: Schedule): Record<string, unknown> {
  return { key: s.key, queue: s.queue, type: s.type, schedule: 'cron' in s.schedule ? `${s.schedule.cron} ${s.schedule.timezone}` : `every ${s.schedule.every} ms`, paused: s.paused, nextRunAt: s.nextRunAt, lastRunAt: s.lastRunAt }
}

function done(ctx: CommandContext, key: string, tenant: string, schedule: Schedule | null, verb: string): number {
  if (schedule === null) throw new CliError(`schedule ${key} not found for tenant ${tenant}`, EXIT.failed)
  ctx.out.result(schedule, () => ctx.out.line(`${key}: ${verb}, next run ${schedule.nextRunAt ? schedule.nextRunAt.toISOString() : '-'}`))
  return EXIT.ok
}

async function trigger(ctx: CommandContext, key: string, tenant: string): Promise<number> {
  const producer = openProducer(ctx)
  const s = await producer.schedules.withTenant(tenant).get(key)
  if (s === null) throw new CliError(`schedule ${key} not found for tenant ${tenant}`, EXIT.failed)
  const pushed = await producer.queues.withTenant(tenant).push({
    queue: s.queue,
    type: s.type,
    payload: s.payload,
    payloadType: s.payloadType,
    target: s.target,
    priority: s.priority,
    ...(s.retryPolicy !== null ? { retryPolicy: s.retryPolicy } : {}),
  })
  ctx.out.result({ schedule: key, job: pushed }, () => ctx.out.line(`${key}: pushed job ${pushed.id} to ${pushed.queue} (${pushed.state})`))
  return EXIT.ok
}
