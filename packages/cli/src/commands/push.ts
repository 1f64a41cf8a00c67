import { createReadStream } from 'node:fs'
import { createInterface } from 'node:readline'
import type { Command } from '@commander-js/extra-typings'
import { isDataError, PgQueueValidationError } from '@pgqueue/core/internal'
import type { PushItem, PushResult, TenantQueues } from '@pgqueue/producer'
import { action } from '../action.js'
import { openProducer, parseDuration, parsePositiveInt } from '../clients.js'
import type { CommandContext } from '../context.js'
import { EXIT, usageError } from '../errors.js'

interface Flags {
  tenant: string
  queue?: string
  type?: string
  payload?: string
  text?: string
  target?: string
  key?: string
  priority?: string
  delay?: string
  file?: string
  batch: string
}

/** A line that was not written, and why. */
export interface RefusedLine {
  line: number
  reason: string
}

/** What `pgqueue push --file` reports. */
export interface PushSummary {
  lines: number
  pushed: number
  created: number
  replaced: number
  /** Items replaced by a later line with the same (queue, key) in the same batch. */
  superseded: number
  refused: RefusedLine[]
  durationMs: number
  jobsPerSecond: number
}

const ITEM_FIELDS = new Set(['queue', 'type', 'payload', 'payloadType', 'target', 'key', 'priority', 'delay', 'runAt', 'retryPolicy'])

/** `pgqueue push`: one job from flags, or many from an NDJSON file (or stdin with --file -), in batches. */
export function registerPush(program: Command): void {
  program
    .command('push')
    .description('push one job from flags, or one job per line of an NDJSON file (--file, or --file - for stdin) in all-or-nothing batches')
    .requiredOption('--tenant <id>', 'the tenant the jobs belong to')
    .option('--queue <name>', 'queue (for NDJSON: the default of lines without one)')
    .option('--type <type>', 'job type (for NDJSON: the default of lines without one)')
    .option('--payload <json>', 'payload, a JSON value (stored as application/json)')
    .option('--text <text>', 'payload, as text')
    .option('--target <json>', 'target, a JSON value')
    .option('--key <key>', 'unique key: replaces a waiting job with the same key')
    .option('--priority <n>', 'higher runs first, within the tenant')
    .option('--delay <duration>', 'due after this long (e.g. 30s, 5m)')
    .option('--file <path>', 'NDJSON file of push items, one per line; - reads stdin')
    .option('--batch <n>', 'lines per all-or-nothing batch', '500')
    .action(action(async (ctx, flags: Flags) => (flags.file !== undefined ? pushFile(ctx, flags, flags.file) : pushOne(ctx, flags))))
}

function parseJsonFlag(value: string, flag: string): unknown {
  try {
    return JSON.parse(value)
  } catch {
    throw usageError(`${flag}: not valid JSON: ${value.length > 60 ? `${value.slice(0, 60)}...` : value}`)
  }
}

async function pushOne(ctx: CommandContext, flags: Flags): Promise<number> {
  if (flags.queue === undefined || flags.type === undefined) throw usageError('push: --queue and --type are required (or give --file with NDJSON lines)')
  if (flags.payload !== undefined && flags.text !== undefined) throw usageError('push: give --payload or --text, not both')
  const item: PushItem = {
    queue: flags.queue,
    type: flags.type,
    ...(flags.payload !== undefined ? { payload: parseJsonFlag(flags.payload, '--payload') as PushItem['payload'] } : {}),
    ...(flags.text !== undefined ? { payload: flags.text } : {}),
    ...(flags.target !== undefined ? { target: parseJsonFlag(flags.target, '--target') } : {}),
    ...(flags.key !== undefined ? { key: flags.key } : {}),
    ...(flags.priority !== undefined ? { priority: Number(flags.priority) } : {}),
    ...(flags.delay !== undefined ? { delay: parseDuration(flags.delay, '--delay') } : {}),
  }
  const pushed = await openProducer(ctx).queues.withTenant(flags.tenant).push(item)
  ctx.out.result(pushed, () => ctx.out.line(`${pushed.outcome} job ${pushed.id} in ${pushed.queue} (${pushed.state}, due ${pushed.runAt.toISOString()})`))
  return EXIT.ok
}

/** Parses one NDJSON line into a push item, or says why it cannot be one. */
function parseLine(text: string, defaults: { queue?: string; type?: string }): PushItem | string {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    return `not valid JSON (${(err as Error).message})`
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'must be a JSON object (a push item)'
  const raw = value as Record<string, unknown>
  const unknown = Object.keys(raw).filter((k) => !ITEM_FIELDS.has(k))
  if (unknown.length > 0) return `unknown field${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} (one tenant per run: use --tenant)`
  const item = { ...(defaults.queue !== undefined ? { queue: defaults.queue } : {}), ...(defaults.type !== undefined ? { type: defaults.type } : {}), ...raw } as Record<string, unknown>
  if (typeof item.runAt === 'string') {
    const at = new Date(item.runAt)
    if (Number.isNaN(at.getTime())) return 'runAt: not a date (use ISO 8601)'
    item.runAt = at
  }
  return item as unknown as PushItem
}

async function pushFile(ctx: CommandContext, flags: Flags, file: string): Promise<number> {
  const batchSize = parsePositiveInt(flags.batch, '--batch')
  if (batchSize > 10_000) throw usageError('--batch: at most 10000 lines')
  if (file === '-' && process.stdin.isTTY) throw usageError('push --file -: stdin is a terminal; pipe NDJSON into it (pgqueue push --file - < jobs.ndjson)')
  const input = file === '-' ? process.stdin : createReadStream(file)
  const opened = new Promise<void>((resolve, reject) => {
    if (file === '-') return resolve()
    input.once('open', () => resolve())
    input.once('error', (err: Error) => reject(usageError(`cannot read ${file}: ${(err as Error).message}`)))
  })
  await opened
  const queues = openProducer(ctx).queues.withTenant(flags.tenant)
  const summary: PushSummary = { lines: 0, pushed: 0, created: 0, replaced: 0, superseded: 0, refused: [], durationMs: 0, jobsPerSecond: 0 }
  const started = performance.now()
  const progress = process.stderr.isTTY === true && !ctx.out.json
  const showProgress = () => {
    const s = (performance.now() - started) / 1000
    process.stderr.write(`\r${summary.pushed} pushed, ${summary.refused.length} refused, ${Math.round(summary.pushed / Math.max(s, 0.001))} jobs/s `)
  }
  let batch: { line: number; item: PushItem }[] = []
  const flush = async () => {
    if (batch.length === 0) return
    await pushBatch(queues, batch, summary)
    batch = []
    if (progress) showProgress()
  }
  const lines = createInterface({ input, crlfDelay: Infinity })
  for await (const text of lines) {
    summary.lines += 1
    if (text.trim() === '') continue
    const parsed = parseLine(text, flags)
    if (typeof parsed === 'string') summary.refused.push({ line: summary.lines, reason: parsed })
    else batch.push({ line: summary.lines, item: parsed })
    if (batch.length >= batchSize) await flush()
  }
  await flush()
  if (progress) process.stderr.write('\n')
  summary.durationMs = Math.round(performance.now() - started)
  summary.jobsPerSecond = Math.round(summary.pushed / Math.max(summary.durationMs / 1000, 0.001))
  summary.refused.sort((a, b) => a.line - b.line)
  ctx.out.result(summary, () => {
    ctx.out.line(`${summary.pushed} pushed (${summary.created} created, ${summary.replaced} replaced, ${summary.superseded} superseded) from ${summary.lines} lines in ${summary.durationMs} ms`)
    if (summary.refused.length > 0) {
      ctx.out.line(`${summary.refused.length} refused:`)
      for (const r of summary.refused) ctx.out.line(`  line ${r.line}: ${r.reason}`)
    }
  })
  return summary.refused.length > 0 ? EXIT.refused : EXIT.ok
}

/**
 * Pushes one batch with pushMany(), all or nothing. A line that fails validation is refused and the
 * rest of the batch is tried again (validation runs before anything is sent, so nothing was written);
 * a batch the database refuses is refused whole, naming every line in it.
 */
async function pushBatch(queues: TenantQueues, batch: { line: number; item: PushItem }[], summary: PushSummary): Promise<void> {
  let rest = batch
  while (rest.length > 0) {
    let results: PushResult[]
    try {
      results = await queues.pushMany(rest.map((b) => b.item))
    } catch (err) {
      const index = err instanceof PgQueueValidationError ? /^items\[(\d+)\]\.?/.exec(err.field) : null
      if (err instanceof PgQueueValidationError && index !== null) {
        const at = Number(index[1])
        summary.refused.push({ line: rest[at]!.line, reason: err.message.replace(/^items\[\d+\](\.|: )?/, '') || err.message })
        rest = rest.filter((_, i) => i !== at)
        continue
      }
      if (isDataError(err)) {
        for (const b of rest) summary.refused.push({ line: b.line, reason: `its batch (lines ${rest[0]!.line}-${rest.at(-1)!.line}) was refused by the database: ${(err as Error).message}` })
        return
      }
      throw err
    }
    results.forEach((r, i) => {
      if (r.outcome === 'running') summary.refused.push({ line: rest[i]!.line, reason: `key ${JSON.stringify(r.key)} is held by a running job (${r.id}); push it again after that job finishes` })
      else if (r.outcome === 'superseded') summary.superseded += 1
      else {
        summary.pushed += 1
        if (r.outcome === 'created') summary.created += 1
        else summary.replaced += 1
      }
    })
    return
  }
}
