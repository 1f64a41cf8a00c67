import {
  LIMITS,
  PgQueueJobRunningError,
  PgQueueNotFoundError,
  PgQueueValidationError,
  isUuid,
  uuidv7,
  validateDate as validateCoreDate,
  validateInt,
  validateName,
  validateRetryPolicy,
  withTenantTransaction,
  flowPush,
  queryableOf,
  tracedPush,
  type Queryable,
  type Database,
  type HistoryState,
  type JobState,
} from '@pgqueue/core/internal'
import type { Kysely } from 'kysely'
import pg from 'pg'
import type { ProducerContext } from './context.js'
import { decodeCursor, encodeCursor, isCursorMicros, validateLimit } from './cursor.js'
import { mapTenantErrors } from './db-errors.js'
import { validateJobId, validateJobRef, validatePushItem, type PushRow } from './push-input.js'
import { jobHistoryGetById, jobHistoryList } from './queries/job-history.js'
import { jobGetById, jobGetByKey, jobHoldPending, jobList, jobPushMany, jobRemove, type PushedRow } from './queries/jobs.js'
import { queueGet, queueList, queueUpsert, type QueueChanges } from './queries/queues.js'
import { toHistoryEntry, toJob, toQueueConfig } from './rows.js'
import type {
  CancelOutcome,
  DeleteOutcome,
  ExternalTransaction,
  HistoryEntry,
  LiveJob,
  JobRef,
  ListHistoryOptions,
  ListJobsOptions,
  Page,
  PageOptions,
  PushItem,
  PushItemOf,
  PushOptions,
  PushResult,
  QueueConfig,
  QueueSettings,
  FlowCreated,
  FlowNode,
} from './types.js'
import { TenantWorkerMetadata } from './tenant-worker-metadata.js'
import { TenantFlows } from './tenant-flows.js'
import { newFlowId, validateFlowNodes } from './flow-input.js'

const JOB_STATES: readonly JobState[] = ['scheduled', 'pending', 'held', 'running', 'waiting']
const HISTORY_STATES: readonly HistoryState[] = ['completed', 'failed', 'cancelled']
const QUEUE_SETTINGS = new Set(['paused', 'retryPolicy', 'maxConcurrency', 'displayName', 'keepCompleted'])
const MAX_CONCURRENCY = 1_000_000
const DISPLAY_NAME_LIMIT = 256

/**
 * The queue operations of one tenant, as the queue_user role: every statement is scoped to the tenant by
 * row-level security, so ids of another tenant find nothing and change nothing. Get one from
 * Queues.withTenant(tenantId).
 */
export class TenantQueues {
  /** The tenant's small key/JSON store for worker-side settings. */
  readonly workerMetadata: TenantWorkerMetadata
  /** Reading and cancelling this tenant's flows (create one with flow()). */
  readonly flows: TenantFlows

  /** @internal */
  constructor(
    private readonly ctx: ProducerContext,
    /** The tenant every call acts for. */
    readonly tenantId: string,
  ) {
    this.workerMetadata = new TenantWorkerMetadata(ctx, tenantId)
    this.flows = new TenantFlows(ctx, tenantId)
  }

  /**
   * Creates a flow (a DAG of jobs) in one statement and one transaction (the caller's with `{ tx }`):
   * each node is a push item without a key, plus `ref` (its name in the call), `dependsOn` (refs of
   * the nodes it waits for, any number, in any queue of this tenant) and `runOnParentFailure`. Nodes
   * with no parent are pushed at once; the others wait in state 'waiting' and are released by the
   * transaction that records their last parent's outcome. At most MAX_FLOW_NODES (1,000) nodes per
   * call. Refused with PgQueueValidationError, nothing written: a cycle, an unknown or duplicate ref,
   * a key, any invalid item. Returns the flow id and the job id of each ref.
   */
  async flow<T extends string>(nodes: readonly FlowNode<T>[], options: PushOptions = {}): Promise<FlowCreated> {
    this.ctx.assertOpen()
    const input = validateFlowNodes(nodes as readonly FlowNode[], 'nodes', this.ctx.options.payloadLimitBytes, () => this.ctx.options.clock.now())
    const tx = validateTx(options)
    const flowId = newFlowId()
    const db = tx === undefined ? queryableOf(this.ctx.db) : 'query' in tx && typeof tx.query === 'function' ? (tx as pg.ClientBase) : queryableOf(tx as Kysely<Database>)
    await tracedPush(this.ctx.telemetry, this.tenantId, input.rows, (traceContext) =>
      mapTenantErrors(this.tenantId, () =>
        mapFlowRefusal(() =>
          flowPush(db as Queryable, {
            schema: this.ctx.schema, tenantId: this.tenantId, token: this.ctx.options.tenantKey.token(this.tenantId), flowId, rows: input.rows, edges: input.edges, traceContext,
          }),
        ),
      ),
    )
    return { flowId, jobs: Object.fromEntries(input.ids) }
  }

  /**
   * Pushes one job in exactly one statement and one round trip (push_jobs() sets the tenant itself).
   * With an existing (queue, key): a waiting job is replaced in place (same id; type, payload, target,
   * priority, run time and retry policy taken from this item; attempts reset). A running job is never
   * replaced under its worker: push() then throws PgQueueJobRunningError and writes nothing; push again
   * after it finishes, or cancel it first.
   * With `{ tx }` the job is part of the caller's transaction and vanishes if it rolls back.
   */
  async push<T extends string>(item: PushItemOf<T>, options: PushOptions = {}): Promise<PushResult> {
    this.ctx.assertOpen()
    const row = validatePushItem(item as PushItem, 'item', this.ctx.options.payloadLimitBytes, () => this.ctx.options.clock.now())
    const tx = validateTx(options)
    const [pushed] = await tracedPush(this.ctx.telemetry, this.tenantId, [row], (traceContext) =>
      mapTenantErrors(this.tenantId, () => jobPushMany(tx ?? this.ctx.db, this.pushParams([row], traceContext))))
    if (pushed === undefined) throw new Error('push_jobs() returned no row')
    if (pushed.outcome === 'running') throw new PgQueueJobRunningError(row.queue, row.key ?? '', pushed.id)
    return toPushResult(pushed, pushed.outcome)
  }

  /**
   * Pushes many jobs, all or nothing: chunks of at most `pushChunkSize` rows (default 1,000) and
   * `pushChunkBytes` of payloads and targets (default 32 MiB) per push_jobs() call,
   * inside one transaction (the caller's with `{ tx }`). Every item is validated before anything is sent.
   * Results follow the input order. Per item, outcome 'running' means a running job holds its key and
   * nothing was written for it (no error is thrown); 'superseded' means a later item of this call had the
   * same (queue, key) and won (one statement cannot upsert a row twice).
   */
  async pushMany<T extends string>(items: readonly PushItemOf<T>[], options: PushOptions = {}): Promise<PushResult[]> {
    this.ctx.assertOpen()
    if (!Array.isArray(items)) throw new PgQueueValidationError('items', 'must be an array', items)
    const now = () => this.ctx.options.clock.now()
    const rows = items.map((item, i) => validatePushItem(item as PushItem, `items[${i}]`, this.ctx.options.payloadLimitBytes, now))
    const tx = validateTx(options)
    if (rows.length === 0) return []

    // The last item for a (queue, key) wins; earlier ones are reported as superseded.
    const winner = new Map<string, number>()
    rows.forEach((r, i) => {
      if (r.key !== null) winner.set(keyOf(r.queue, r.key), i)
    })
    const kept = rows.filter((r, i) => r.key === null || winner.get(keyOf(r.queue, r.key)) === i)
    // Chunks in queue order, so every transaction advances fair clocks (and locks key rows) in the same
    // order: two concurrent pushMany calls of one tenant cannot deadlock. The sort is stable, so the
    // fair order within a queue stays the input order.
    kept.sort((a, b) => (a.queue < b.queue ? -1 : a.queue > b.queue ? 1 : 0))
    const chunks = chunkRows(kept, this.ctx.options.pushChunkSize, this.ctx.options.pushChunkBytes)

    const pushed: PushedRow[] = await tracedPush(this.ctx.telemetry, this.tenantId, kept, (traceContext) => mapTenantErrors(this.tenantId, async () => {
      const params = (chunk: PushRow[]) => this.pushParams(chunk, traceContext)
      if (tx !== undefined || chunks.length === 1) {
        const out: PushedRow[] = []
        for (const chunk of chunks) out.push(...(await jobPushMany(tx ?? this.ctx.db, params(chunk))))
        return out
      }
      return this.ctx.db.transaction().execute(async (trx) => {
        const out: PushedRow[] = []
        for (const chunk of chunks) out.push(...(await jobPushMany(trx, params(chunk))))
        return out
      })
    }))

    const byKey = new Map<string, PushedRow>()
    const byId = new Map<string, PushedRow>()
    for (const p of pushed) {
      if (p.key !== null) byKey.set(keyOf(p.queue, p.key), p)
      else byId.set(p.id, p)
    }
    return rows.map((r, i) => {
      const p = r.key === null ? byId.get(r.id) : byKey.get(keyOf(r.queue, r.key))
      if (p === undefined) throw new Error(`push_jobs() returned no row for item ${i}`)
      const superseded = r.key !== null && winner.get(keyOf(r.queue, r.key)) !== i
      return toPushResult(p, superseded ? 'superseded' : p.outcome)
    })
  }

  /**
   * A job by id: the live job, else its history entry once finished, else null. A job completed in a
   * queue configured with `keepCompleted: false` left no history entry: null, like an unknown id.
   * By { queue, key }: the live job holding that key, else null (keys are unique among live jobs only).
   */
  async get(ref: string): Promise<LiveJob | HistoryEntry | null>
  async get(ref: { queue: string; key: string }): Promise<LiveJob | null>
  async get(ref: JobRef): Promise<LiveJob | HistoryEntry | null> {
    this.ctx.assertOpen()
    const sel = validateJobRef('ref', ref)
    return this.inTenant(async (trx) => {
      const p = { schema: this.ctx.schema, tenantId: this.tenantId }
      if (!('id' in sel)) {
        const row = await jobGetByKey(trx, { ...p, ...sel })
        return row === undefined ? null : toJob(row)
      }
      const row = await jobGetById(trx, { ...p, id: sel.id })
      if (row !== undefined) return toJob(row)
      const hist = await jobHistoryGetById(trx, { ...p, id: sel.id })
      return hist === undefined ? null : toHistoryEntry(hist)
    })
  }

  /**
   * Removes a waiting job (scheduled, pending or held) without keeping history: use cancel() to keep a
   * record. A running job is not removed under its worker: it is flagged as cancel() does, and
   * 'cancel_requested' is returned.
   */
  async delete(ref: JobRef): Promise<DeleteOutcome> {
    this.ctx.assertOpen()
    const selector = validateJobRef('ref', ref)
    const res = await this.inTenant((trx) => jobRemove(trx, { schema: this.ctx.schema, tenantId: this.tenantId, selector, archive: false }))
    return res === undefined ? 'not_found' : res.action === 'deleted' ? 'deleted' : 'cancel_requested'
  }

  /**
   * Cancels a job. A waiting job moves to history as 'cancelled' in the same statement. A running job is
   * flagged (cancel_requested): its worker sees the flag at its next lease renewal, fires the handler's
   * AbortSignal and records the job as cancelled.
   */
  async cancel(ref: JobRef): Promise<CancelOutcome> {
    this.ctx.assertOpen()
    const selector = validateJobRef('ref', ref)
    const res = await this.inTenant((trx) => jobRemove(trx, { schema: this.ctx.schema, tenantId: this.tenantId, selector, archive: true }))
    return res === undefined ? 'not_found' : res.action === 'cancelled' ? 'cancelled' : 'cancel_requested'
  }

  /** Live jobs, newest first, with filters; page with `cursor` = the previous page's nextCursor. */
  async list(options: ListJobsOptions = {}): Promise<Page<LiveJob>> {
    this.ctx.assertOpen()
    const f = validateFilters(options, JOB_STATES)
    const limit = validateLimit(options.limit)
    const cursor = decodeCursor(options.cursor, 1, (p) => isUuid(p[0]))
    const rows = await this.inTenant((trx) =>
      jobList(trx, { schema: this.ctx.schema, tenantId: this.tenantId, ...f, ...(cursor ? { afterId: cursor[0]! } : {}), limit: limit + 1 }),
    )
    const more = rows.length > limit
    const items = rows.slice(0, limit).map(toJob)
    return { items, nextCursor: more ? encodeCursor([items[items.length - 1]!.id]) : null }
  }

  /** Finished jobs, most recently finished first, with filters; page with `cursor`. */
  async history(options: ListHistoryOptions = {}): Promise<Page<HistoryEntry>> {
    this.ctx.assertOpen()
    const f = validateFilters(options, HISTORY_STATES)
    const limit = validateLimit(options.limit)
    const cursor = decodeCursor(options.cursor, 2, (p) => isCursorMicros(p[0]) && isUuid(p[1]))
    const rows = await this.inTenant((trx) =>
      jobHistoryList(trx, {
        schema: this.ctx.schema,
        tenantId: this.tenantId,
        ...f,
        ...(cursor ? { after: { finishedUs: cursor[0]!, id: cursor[1]! } } : {}),
        limit: limit + 1,
      }),
    )
    const more = rows.length > limit
    const page = rows.slice(0, limit)
    const last = page[page.length - 1]
    return { items: page.map(toHistoryEntry), nextCursor: more && last ? encodeCursor([last.finished_us, last.id]) : null }
  }

  /**
   * Pushes a failed or cancelled job again, as a new job (new id, attempts from 0) with the same queue,
   * type, payload, target, priority, max attempts and schedule, and retryOf = the history entry's id.
   * The new job has no key, so it never replaces a live job. Each call pushes one more job.
   * Throws PgQueueNotFoundError when this tenant has no such entry, which is also the answer for a job
   * completed in a queue with `keepCompleted: false` (only failed and cancelled jobs can be retried,
   * and those are always kept).
   */
  async retry(historyId: string): Promise<PushResult> {
    this.ctx.assertOpen()
    const id = validateJobId('historyId', historyId)
    return this.inTenant(async (trx) => {
      const hist = await jobHistoryGetById(trx, { schema: this.ctx.schema, tenantId: this.tenantId, id })
      if (hist === undefined) throw new PgQueueNotFoundError('history entry', id)
      if (hist.state !== 'failed' && hist.state !== 'cancelled') {
        throw new PgQueueValidationError('historyId', `only failed or cancelled jobs can be retried; this one is ${hist.state}`, id)
      }
      const row: PushRow = {
        id: uuidv7(),
        queue: hist.queue,
        type: hist.type,
        key: null,
        payload: hist.payload,
        payloadType: hist.payload_type,
        target: hist.target === null ? null : JSON.stringify(hist.target),
        priority: hist.priority,
        runAt: null,
        maxAttempts: hist.max_attempts,
        retryPolicy: null,
        scheduleId: hist.schedule_id,
        retryOf: hist.id,
      }
      // The new job's send span links the original's trace, which the history entry kept.
      const [pushed] = await tracedPush(this.ctx.telemetry, this.tenantId, [row], (traceContext) => jobPushMany(trx, this.pushParams([row], traceContext)), hist.trace_context)
      return toPushResult(pushed!, pushed!.outcome)
    })
  }

  /**
   * Creates or updates the settings of one of this tenant's queues; fields left out keep their value,
   * null clears one. Pausing or setting maxConcurrency moves the queue's pending jobs to 'held' in the
   * same transaction; the Scheduler releases held jobs of unpaused queues, up to the cap, with fresh
   * fair times. Unpausing leaves the held jobs to the Scheduler.
   */
  async configureQueue(queue: string, settings: QueueSettings): Promise<QueueConfig> {
    this.ctx.assertOpen()
    const name = validateName('queue', queue, LIMITS.queueName)
    const changes = validateQueueSettings(settings)
    return this.inTenant(async (trx) => {
      const row = await queueUpsert(trx, { schema: this.ctx.schema, tenantId: this.tenantId, queue: name, changes })
      if (changes.paused === true || (changes.max_concurrency !== undefined && changes.max_concurrency !== null)) {
        await jobHoldPending(trx, { schema: this.ctx.schema, tenantId: this.tenantId, queue: name })
      }
      return toQueueConfig(row)
    })
  }

  /** The settings of one queue, or null when it was never configured (defaults apply). */
  async getQueue(queue: string): Promise<QueueConfig | null> {
    this.ctx.assertOpen()
    const name = validateName('queue', queue, LIMITS.queueName)
    const row = await this.inTenant((trx) => queueGet(trx, { schema: this.ctx.schema, tenantId: this.tenantId, queue: name }))
    return row === undefined ? null : toQueueConfig(row)
  }

  /** The configured queues of this tenant, by name. */
  async listQueues(options: PageOptions = {}): Promise<Page<QueueConfig>> {
    this.ctx.assertOpen()
    const limit = validateLimit(options.limit)
    const cursor = decodeCursor(options.cursor, 1)
    const rows = await this.inTenant((trx) =>
      queueList(trx, { schema: this.ctx.schema, tenantId: this.tenantId, ...(cursor ? { afterQueue: cursor[0]! } : {}), limit: limit + 1 }),
    )
    const items = rows.slice(0, limit).map(toQueueConfig)
    return { items, nextCursor: rows.length > limit ? encodeCursor([items[items.length - 1]!.queue]) : null }
  }

  /** What jobPushMany() needs for `rows` of this tenant, its signed token included. */
  private pushParams(rows: PushRow[], traceContext?: string) {
    return { schema: this.ctx.schema, tenantId: this.tenantId, token: this.ctx.options.tenantKey.token(this.tenantId), rows, traceContext }
  }

  /** Runs `fn` in a transaction whose first statement sets this tenant (reads must not rely on a CTE for it). */
  private inTenant<T>(fn: (trx: Kysely<Database>) => Promise<T>): Promise<T> {
    return mapTenantErrors(this.tenantId, () => withTenantTransaction(this.ctx.db, this.ctx.options.tenantKey, this.tenantId, fn))
  }
}

function keyOf(queue: string, key: string): string {
  return `${queue}\u0000${key}`
}

function toPushResult(p: PushedRow, outcome: PushResult['outcome']): PushResult {
  return { id: p.id, queue: p.queue, key: p.key, state: p.state, runAt: p.run_at, createdAt: p.created_at, outcome }
}

/** Accepts a Kysely transaction or a pg client; refuses a pool or a plain Kysely, which would not be transactional. */
function validateTx(options: PushOptions): Kysely<Database> | pg.ClientBase | undefined {
  if (typeof options !== 'object' || options === null) throw new PgQueueValidationError('options', 'must be an object', options)
  const tx = options.tx as ExternalTransaction | undefined
  if (tx === undefined) return undefined
  if (typeof tx === 'object' && tx !== null) {
    const k = tx as Kysely<Database>
    if (typeof k.executeQuery === 'function' && typeof k.selectFrom === 'function') {
      if (!k.isTransaction) throw new PgQueueValidationError('tx', 'must be a Kysely transaction (db.transaction().execute(tx => ...)), not the Kysely instance', undefined)
      return k
    }
    if (tx instanceof pg.Pool || 'totalCount' in tx) throw new PgQueueValidationError('tx', 'must be a client inside BEGIN, not a pool', undefined)
    if (typeof (tx as pg.ClientBase).query === 'function') return tx as pg.ClientBase
  }
  throw new PgQueueValidationError('tx', 'must be a Kysely transaction or a pg client inside BEGIN', undefined)
}

function validateDate(field: string, value: unknown): Date | undefined {
  return value === undefined ? undefined : validateCoreDate(field, value)
}

function validateFilters<S extends string>(
  options: { queue?: string; state?: S | S[]; type?: string; since?: Date; until?: Date },
  allowed: readonly S[],
): { queue?: string; states?: S[]; type?: string; since?: Date; until?: Date } {
  if (typeof options !== 'object' || options === null) throw new PgQueueValidationError('options', 'must be an object', options)
  const out: { queue?: string; states?: S[]; type?: string; since?: Date; until?: Date } = {}
  if (options.queue !== undefined) out.queue = validateName('queue', options.queue, LIMITS.queueName)
  if (options.type !== undefined) out.type = validateName('type', options.type, LIMITS.type)
  if (options.state !== undefined) {
    const states = Array.isArray(options.state) ? options.state : [options.state]
    for (const s of states) if (!allowed.includes(s)) throw new PgQueueValidationError('state', `must be one of ${allowed.join(', ')}`, s)
    if (states.length === 0) throw new PgQueueValidationError('state', 'must name at least one state', options.state)
    out.states = states
  }
  const since = validateDate('since', options.since)
  const until = validateDate('until', options.until)
  if (since) out.since = since
  if (until) out.until = until
  return out
}

function validateQueueSettings(settings: unknown): QueueChanges {
  if (typeof settings !== 'object' || settings === null || Array.isArray(settings)) throw new PgQueueValidationError('settings', 'must be an object', settings)
  const s = settings as Record<string, unknown>
  for (const k of Object.keys(s)) if (!QUEUE_SETTINGS.has(k)) throw new PgQueueValidationError(`settings.${k}`, `unknown setting; use ${[...QUEUE_SETTINGS].join(', ')}`, s[k])
  const changes: QueueChanges = {}
  if (s.paused !== undefined) {
    if (typeof s.paused !== 'boolean') throw new PgQueueValidationError('settings.paused', 'must be a boolean', s.paused)
    changes.paused = s.paused
  }
  if (s.retryPolicy !== undefined) changes.retry_policy = s.retryPolicy === null ? null : JSON.stringify(validateRetryPolicy(s.retryPolicy, 'settings.retryPolicy'))
  if (s.maxConcurrency !== undefined) changes.max_concurrency = s.maxConcurrency === null ? null : validateInt('settings.maxConcurrency', s.maxConcurrency, 1, MAX_CONCURRENCY)
  if (s.keepCompleted !== undefined) {
    if (typeof s.keepCompleted !== 'boolean') throw new PgQueueValidationError('settings.keepCompleted', 'must be a boolean', s.keepCompleted)
    changes.keep_completed = s.keepCompleted
  }
  if (s.displayName !== undefined) changes.display_name = s.displayName === null ? null : validateName('settings.displayName', s.displayName, DISPLAY_NAME_LIMIT)
  return changes
}

/** Splits rows into chunks of at most `maxRows` rows and `maxBytes` of payloads and targets (one row always fits). */
export function chunkRows(rows: readonly PushRow[], maxRows: number, maxBytes: number): PushRow[][] {
  const chunks: PushRow[][] = []
  let chunk: PushRow[] = []
  let bytes = 0
  for (const row of rows) {
    const size = (row.payload?.byteLength ?? 0) + (row.target === null ? 0 : Buffer.byteLength(row.target))
    if (chunk.length > 0 && (chunk.length >= maxRows || bytes + size > maxBytes)) {
      chunks.push(chunk)
      chunk = []
      bytes = 0
    }
    chunk.push(row)
    bytes += size
  }
  if (chunk.length > 0) chunks.push(chunk)
  return chunks
}

/** push_flow() refuses what the JavaScript checks should have (22023): report it as a validation error. */
async function mapFlowRefusal<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    if ((err as { code?: unknown }).code === '22023' && /pgqueue:/.test(String((err as Error).message))) {
      throw new PgQueueValidationError('nodes', String((err as Error).message).replace(/^pgqueue: /, ''), undefined)
    }
    throw err
  }
}
