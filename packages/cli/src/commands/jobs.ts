import type { Command } from '@commander-js/extra-typings'
import type { HistoryState, JobState } from '@pgqueue/core/internal'
import type { HistoryEntry, LiveJob } from '@pgqueue/producer'
import { action } from '../action.js'
import { openProducer, parsePositiveInt } from '../clients.js'
import type { CommandContext } from '../context.js'
import { CliError, EXIT, usageError } from '../errors.js'

const LIVE_STATES: readonly JobState[] = ['scheduled', 'pending', 'held', 'running', 'waiting']
const HISTORY_STATES: readonly HistoryState[] = ['completed', 'failed', 'cancelled']

interface ListFlags {
  tenant: string
  queue?: string
  state?: string
  type?: string
  history?: boolean
  limit: string
  cursor?: string
}

/** `pgqueue jobs list|get|retry|cancel|delete --tenant <id>`. */
export function registerJobs(program: Command): void {
  const jobs = program.command('jobs').description("one tenant's jobs: list, get, retry, cancel, delete")
  jobs
    .command('list')
    .description('live jobs (or finished ones with --history), newest first')
    .requiredOption('--tenant <id>', 'the tenant')
    .option('--queue <name>', 'only this queue')
    .option('--state <state>', `only this state (live: ${LIVE_STATES.join(', ')}; history: ${HISTORY_STATES.join(', ')})`)
    .option('--type <type>', 'only this job type')
    .option('--history', 'list finished jobs instead of live ones')
    .option('--limit <n>', 'page size, 1-1000', '100')
    .option('--cursor <cursor>', 'the next page, from the previous list')
    .action(action(async (ctx, flags: ListFlags) => list(ctx, flags)))
  const one = (name: string, description: string, run: (ctx: CommandContext, id: string, tenant: string) => Promise<number>) =>
    jobs
      .command(name)
      .description(description)
      .argument('<id>', 'job id')
      .requiredOption('--tenant <id>', 'the tenant')
      .action(action(async (ctx, id: string, flags: { tenant: string }) => run(ctx, id, flags.tenant)))
  one('get', 'a job by id: live, or its history entry once finished', get)
  one('retry', 'push a finished (failed or cancelled) job again, by its history id', retry)
  one('cancel', 'cancel a job: waiting ones move to history as cancelled, running ones are asked to stop', cancel)
  one('delete', 'delete a waiting job without history (a running one is asked to stop)', del)
}

async function list(ctx: CommandContext, flags: ListFlags): Promise<number> {
  const states: readonly string[] = flags.history ? HISTORY_STATES : LIVE_STATES
  if (flags.state !== undefined && !states.includes(flags.state)) throw usageError(`--state: expected one of ${states.join(', ')}${flags.history ? '' : ' (or pass --history)'}`)
  const q = openProducer(ctx).queues.withTenant(flags.tenant)
  const options = {
    limit: parsePositiveInt(flags.limit, '--limit'),
    ...(flags.queue !== undefined ? { queue: flags.queue } : {}),
    ...(flags.type !== undefined ? { type: flags.type } : {}),
    ...(flags.cursor !== undefined ? { cursor: flags.cursor } : {}),
  }
  const page = flags.history
    ? await q.history({ ...options, ...(flags.state !== undefined ? { state: flags.state as HistoryState } : {}) })
    : await q.list({ ...options, ...(flags.state !== undefined ? { state: flags.state as JobState } : {}) })
  const items = page.items as (LiveJob | HistoryEntry)[]
  ctx.out.result(page, () => {
    ctx.out.table(items.map(summary), ['id', 'queue', 'type', 'key', 'state', 'attempt', flags.history ? 'finishedAt' : 'runAt'])
    if (page.nextCursor) ctx.out.line(`next page: --cursor ${page.nextCursor}`)
  })
  return EXIT.ok
}

function summary(j: LiveJob | HistoryEntry): Record<string, unknown> {
  return { id: j.id, queue: j.queue, type: j.type, key: j.key, state: j.state, attempt: `${j.attempt}/${j.maxAttempts}`, runAt: 'runAt' in j ? j.runAt : null, finishedAt: 'finishedAt' in j ? j.finishedAt : null }
}

async function get(ctx: CommandContext, id: string, tenant: string): Promise<number> {
  const job = await openProducer(ctx).queues.withTenant(tenant).get(id)
  if (job === null) throw new CliError(`job ${id} not found for tenant ${tenant}`, EXIT.failed)
  ctx.out.result(job, () => {
    for (const [k, v] of Object.entries(job)) if (k !== 'payload' && k !== 'result') ctx.out.line(`${k.padEnd(16)} ${v instanceof Date ? v.toISOString() : typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v)}`)
  })
  return EXIT.ok
}

async function retry(ctx: CommandContext, id: string, tenant: string): Promise<number> {
  const pushed = await openProducer(ctx).queues.withTenant(tenant).retry(id)
  ctx.out.result(pushed, () => ctx.out.line(`pushed job ${pushed.id} (${pushed.state}) retrying ${id}`))
  return EXIT.ok
}

async function cancel(ctx: CommandContext, id: string, tenant: string): Promise<number> {
  const outcome = await openProducer(ctx).queues.withTenant(tenant).cancel(id)
  return outcomeResult(ctx, id, tenant, outcome)
}

async function del(ctx: CommandContext, id: string, tenant: string): Promise<number> {
  const outcome = await openProducer(ctx).queues.withTenant(tenant).delete(id)
  return outcomeResult(ctx, id, tenant, outcome)
}

function outcomeResult(ctx: CommandContext, id: string, tenant: string, outcome: string): number {
  if (outcome === 'not_found') throw new CliError(`job ${id} not found among tenant ${tenant}'s live jobs`, EXIT.failed)
  ctx.out.result({ id, outcome }, () => ctx.out.line(`${id}: ${outcome.replace('_', ' ')}`))
  return EXIT.ok
}
