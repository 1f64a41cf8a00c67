import { randomUUID } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { performance } from 'node:perf_hooks'
import pg from 'pg'
import {
  NotificationListener,
  PgQueueStoppedError,
  PgQueueValidationError,
  checkInstallation,
  decodeBody,
  connect,
  jobsChannel,
  listenUrlFor,
  nodeDelete,
  nodeHeartbeat,
  type NodeBeat,
  sleep,
  validateInt,
  type Connectable,
  type Connection,
} from '@pgqueue/core'
import { errorInfo, type ErrorInfo } from './error-info.js'
import { JobAbortedError, JobBackOffError, type AbortReason, type Job, type JobContext, type JobHandler, type JobHandlers } from './job.js'
import { JobCompleter, type RecordedOutcome, type RunOutcome } from './job-completer.js'
import { LeaseKeeper } from './lease-keeper.js'
import { LeaseOwners } from './lease-owner.js'
import { resolveWorkerOptions, type ResolvedWorkerOptions, type WorkerOptions } from './options.js'
import { jobClaimAcrossQueues, jobClaimMany, jobClaimManyByPriority, jobQueueHasPriorities, rowKey, type ClaimedRow } from './queries/jobs.js'
import { encodeResult } from './result.js'
import type { Run } from './run.js'
import { IdleClaimPacer, Wakeup } from './wakeup.js'

/** Events a Worker emits. Listeners must not throw. */
export interface WorkerEvents {
  /** Something failed in the worker itself (database unreachable, say); it keeps running and retries. */
  error: [error: Error]
  started: []
  stopped: []
  'job:started': [job: Job]
  /** The run's result is recorded in history. */
  'job:completed': [event: { job: Job; durationMs: number }]
  /** The handler failed; `willRetry` tells whether the job went back to wait for `retryAt`. */
  'job:failed': [event: { job: Job; error: ErrorInfo; willRetry: boolean; retryAt?: Date }]
  /** The job was cancelled while running and is recorded as cancelled. */
  'job:cancelled': [event: { job: Job }]
  /** The lease was lost (the job may run elsewhere); this run's outcome is discarded. `job` is the lost
   *  run's job (its attempt, payload), even when the same job id runs again here meanwhile. */
  'job:lost': [event: { job: Job }]
  /** The job went back to pending unfinished (claimed but not started, or interrupted by stop()), its
   *  attempt not counted. A buffered job whose lease could lapse before its next renewal is released
   *  this way instead of being started. */
  'job:released': [event: { job: Job }]
}

/** Longest row lock wait of a completion statement: past it, the outcomes whose rows another
 *  transaction holds are set aside and the rest recorded (see JobCompleter). */
const COMPLETE_LOCK_TIMEOUT_MS = 1_000

/** A buffered job older than this halves the claim size. */
const BUFFER_WAIT_SHRINK_MS = 500

/** The run's AbortSignal, made on first use (already aborted when the run was). */
function signalOf(run: Run): AbortSignal {
  if (!run.controller) {
    run.controller = new AbortController()
    if (run.abortError) run.controller.abort(run.abortError)
  }
  return run.controller.signal
}

function toJob(r: ClaimedRow, queue: string): Job {
  return {
    id: r.id,
    tenantId: r.tenant_id,
    queue,
    type: r.type,
    key: r.key,
    payload: r.payload,
    payloadType: r.payload_type,
    data: decodeBody(r.payload, r.payload_type),
    target: r.target,
    attempt: r.attempt,
    maxAttempts: r.max_attempts,
    runAt: new Date(r.run_at_ms),
    createdAt: new Date(r.created_at_ms),
    scheduleId: r.schedule_id,
    priority: r.priority,
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === 'object' || typeof value === 'function') && value !== null && typeof (value as { then?: unknown }).then === 'function'
}

/** What a finished handler produced, before it becomes a RunOutcome. */
type Settled = Pick<RunOutcome, 'kind' | 'result' | 'resultType' | 'error' | 'backOffMs'>

const NO_RESULT = { result: null, resultType: null } as const

/** The handler's ctx: one small object per run, its members on the prototype. */
class RunContext implements JobContext {
  constructor(
    private readonly run: Run,
    readonly nodeId: string,
    private readonly extend: (run: Run, ms: number) => Promise<void>,
  ) {}
  get signal(): AbortSignal {
    return signalOf(this.run)
  }
  extendLease(ms: number): Promise<void> {
    return this.extend(this.run, ms)
  }
  backOff(ms: number): never {
    throw new JobBackOffError(ms)
  }
}

/**
 * Claims pending jobs in fair order, runs the handler with a lease that a heartbeat keeps renewing,
 * and records outcomes in batches. See the package README for the options and the guarantees.
 */
export class Worker<Target = unknown> extends EventEmitter<WorkerEvents> {
  /** The options in effect, defaults filled in. */
  readonly options: ResolvedWorkerOptions
  private readonly target: Connectable
  private readonly handler: JobHandler<Target>
  private conn: Connection | undefined
  private listener: NotificationListener | undefined
  private completer: JobCompleter | undefined
  private state: 'new' | 'running' | 'stopping' | 'stopped' = 'new'
  private stopPromise: Promise<void> | undefined
  private readonly buffer: Run[] = []
  /** Payload bytes of the runs in the buffer (see claimMaxBytes). */
  private bufferedBytes = 0
  /** Every run whose lease this worker holds, by rowKey(tenant, id). */
  private readonly active = new Map<string, Run>()
  private readonly owners: LeaseOwners
  private keeper: LeaseKeeper | undefined
  /** A buffered run starts only if its lease surely lasts this long: until the next renewal at least. */
  private readonly startMarginMs: number
  private readonly pacer: IdleClaimPacer
  /** The last claim came back empty: the next one is paced (see wakeGapMs). */
  private idle = false
  private readonly stopSignal = new AbortController()
  private nodeBeat: Promise<void> | undefined
  /** Handlers running now, and who waits for that to reach zero (stop()). */
  private inFlight = 0
  private idleWaiters: (() => void)[] = []
  private pumping = false
  private readonly extendLeaseOf = (run: Run, ms: number): Promise<void> => this.extendLease(run, ms)
  private exhausted = false
  /** The current claim size, adapted between minClaimSize and batchSize (see WorkerOptions.batchSize). */
  private claimSize = 0
  /** Set when a claim returns to an empty buffer and idle handler slots. */
  private starved = false
  private minClaimSize = 0
  private readonly claimWake = new Wakeup()
  private claimLoop: Promise<void> | undefined
  /** Serving every queue: the last tenant of the previous claim round, and the queue each tenant was
   *  last served from (see jobClaimAcrossQueues()). */
  private tenantCursor = ''
  private lastQueues = new Map<string, string>()
  /** Tells this process's node row from another process using the same node id. */
  private readonly instance = randomUUID()
  /** When start() succeeded (monotonic), and when each node warning was last given. */
  private startedAt = Number.POSITIVE_INFINITY
  private warnedSharedAt = Number.NEGATIVE_INFINITY
  private warnedSchedulerAt = Number.NEGATIVE_INFINITY
  private queueCursor = 0
  /** Per queue: whether it has pending jobs with a priority other than 0, and when that was asked. */
  private readonly priorityQueues = new Map<string, { mixed: boolean; at: number }>()

  private constructor(target: Connectable, options: WorkerOptions, handler: JobHandler<Target>) {
    super()
    if (typeof handler !== 'function') throw new PgQueueValidationError('handler', 'must be a function', handler)
    if (typeof target !== 'string' && (typeof target !== 'object' || target === null)) {
      throw new PgQueueValidationError('url', 'must be a connection string or a pg.Pool', target)
    }
    this.options = resolveWorkerOptions(options)
    this.minClaimSize = Math.min(this.options.batchSize, Math.max(this.options.concurrency, 10))
    this.claimSize = this.minClaimSize
    this.target = target
    this.handler = handler
    this.owners = new LeaseOwners(this.options.nodeId)
    this.startMarginMs = Math.min(this.options.heartbeatMs, this.options.leaseMs / 2)
    this.pacer = new IdleClaimPacer(this.options.wakeGapMs)
  }

  /** Validates the options (throwing PgQueueValidationError) and returns a worker that is not started yet. */
  static create<Target = unknown>(urlOrPool: string | pg.Pool, options: WorkerOptions, handler: JobHandler<Target> | JobHandlers<Target>): Worker<Target> {
    if (typeof handler === 'function') return new Worker<Target>(urlOrPool, options, handler)
    return new Worker<Target>(urlOrPool, withHandlerTypes(options, handler), dispatchByType(handler))
  }

  get nodeId(): string {
    return this.options.nodeId
  }

  /** True between start() and the end of stop(). */
  get isRunning(): boolean {
    return this.state === 'running' || this.state === 'stopping'
  }

  /**
   * Starts claiming. Rejects with PgQueueSetupError for a login of the wrong role or a schema that is
   * missing or at another version; an unreachable database is reported as 'error' and retried.
   * A second call while running does nothing; a Worker that was stopped cannot start again (throws
   * PgQueueStoppedError): create a new one.
   */
  async start(): Promise<void> {
    if (this.state === 'running') return
    if (this.state !== 'new') throw new PgQueueStoppedError(`Worker ${this.options.nodeId} (create a new Worker to start again)`)
    const o = this.options
    const conn = connect(this.target, { max: o.poolSize, applicationName: 'pgqueue-worker' })
    try {
      // A wrong login or a missing initialize() fails here, with the fix in the message, not as a stream
      // of error events; the Worker can be started again once it is fixed.
      await checkInstallation(conn.pool, { schema: o.schema, component: `Worker ${o.nodeId}`, accepted: ['worker', 'owner'] })
    } catch (err) {
      await conn.close()
      throw err
    }
    this.state = 'running'
    this.conn = conn
    this.startedAt = performance.now()
    this.completer = new JobCompleter(this.conn.pool, {
      schema: o.schema,
      nodeId: o.nodeId,
      batchSize: o.completeBatchSize,
      maxBytes: o.completeMaxBytes,
      delayMs: o.completeDelayMs,
      lockTimeoutMs: COMPLETE_LOCK_TIMEOUT_MS,
      logger: o.logger,
      onRecorded: (batch) => this.onRecorded(batch),
      onError: (err) => this.reportError(err),
    })
    const url = o.listen ? listenUrlFor(this.target, o.listenUrl) : undefined
    if (url) {
      this.listener = new NotificationListener({
        url,
        channels: [jobsChannel(o.schema)],
        logger: o.logger,
        onNotify: () => this.onNotify(),
        onConnect: () => this.onNotify(),
      })
      this.listener.start()
    }
    this.keeper = new LeaseKeeper({
      schema: o.schema,
      leaseMs: o.leaseMs,
      heartbeatMs: o.heartbeatMs,
      newClient: (connectTimeoutMs) => this.newLeaseClient(connectTimeoutMs),
      pool: this.conn.pool,
      logger: o.logger,
      runs: () => this.active.values(),
      onLost: (run) => this.markLost(run),
      onCancelRequested: (run) => this.abort(run, 'cancelled'),
      onError: (err) => this.reportError(err),
      onTick: () => this.beatNode(),
    })
    await this.heartbeatNode().catch((err) => this.reportError(err))
    this.claimLoop = this.runClaimLoop()
    this.keeper.start()
    this.emit('started')
  }

  /**
   * Stops claiming, releases claimed jobs that have not started (back to pending at their fair
   * position), waits for running handlers up to `timeoutMs` (default the stopTimeoutMs option), then
   * aborts the rest with reason 'shutdown' and releases them too, records every outcome, and resolves.
   */
  stop(options: { timeoutMs?: number } = {}): Promise<void> {
    const timeoutMs = options.timeoutMs === undefined ? this.options.stopTimeoutMs : validateInt('timeoutMs', options.timeoutMs, 0, 2 ** 31 - 1)
    if (this.state === 'new') {
      this.state = 'stopped'
      return Promise.resolve()
    }
    this.stopPromise ??= this.shutdown(timeoutMs)
    return this.stopPromise
  }

  private async shutdown(timeoutMs: number): Promise<void> {
    this.state = 'stopping'
    this.stopSignal.abort()
    this.claimWake.wake()
    await this.claimLoop
    this.bufferedBytes = 0
    for (const run of this.buffer.splice(0)) if (run.phase === 'buffered') this.finish(run, RELEASE)
    if (this.inFlight > 0) {
      const timeout = new AbortController()
      await Promise.race([this.handlersIdle(), sleep(timeoutMs, timeout.signal)])
      timeout.abort()
      for (const run of this.active.values()) if (run.phase === 'running') this.abort(run, 'shutdown')
      await this.handlersIdle()
    }
    await this.completer?.drain(Math.max(5_000, this.options.leaseMs))
    await this.keeper?.stop()
    await this.nodeBeat
    await this.listener?.stop()
    await nodeDelete(this.conn!.pool, { schema: this.options.schema, nodeId: this.options.nodeId }).catch((err) => this.reportError(err))
    await this.conn?.close()
    this.state = 'stopped'
    this.emit('stopped')
  }

  private reportError(err: unknown): void {
    const error = err instanceof Error ? err : new Error(String(err))
    this.options.logger.error(`worker ${this.options.nodeId}: ${error.message}`, { error })
    // An 'error' event without a listener would throw and crash the process.
    if (this.listenerCount('error') > 0) this.emit('error', error)
  }

  private safeEmit<K extends keyof WorkerEvents>(event: K, ...args: WorkerEvents[K]): void {
    try {
      ;(this.emit as (e: string, ...a: unknown[]) => boolean)(event, ...args)
    } catch (err) {
      this.options.logger.error(`worker ${this.options.nodeId}: a '${String(event)}' listener threw`, { error: err })
    }
  }

  private onNotify(): void {
    this.exhausted = false
    this.claimWake.wake()
  }

  // ---- claiming -------------------------------------------------------------------------------

  private async runClaimLoop(): Promise<void> {
    const o = this.options
    let failures = 0
    while (this.state === 'running') {
      const lowWater = Math.floor(this.claimSize / 2)
      // Outcomes not yet recorded still hold leases: beyond two completion batches they count against
      // the room, so a slow database slows claiming instead of letting unrecorded jobs pile up.
      const unrecorded = Math.max(0, (this.completer?.size ?? 0) - 2 * o.completeBatchSize)
      const room = o.concurrency + this.claimSize - this.inFlight - this.buffer.length - unrecorded
      // The byte budget bounds the payloads held in the buffer as well as those of one claim.
      if (this.buffer.length > lowWater || room <= 0 || this.bufferedBytes >= o.claimMaxBytes) {
        await this.claimWake.wait(o.pollMs)
        continue
      }
      if (this.idle) {
        // After an empty claim, wake-ups are paced: a flood of notifications costs few claims.
        const wait = this.pacer.take()
        if (wait > 0) {
          await sleep(wait, this.stopSignal.signal)
          continue
        }
      }
      let claimed: number
      try {
        this.starved = false
        claimed = await this.claimOnce(Math.min(this.claimSize, room))
        // Handlers ran dry while the claim was on its way: claims are too small for their pace.
        if (this.starved && claimed > 0) this.claimSize = Math.min(o.batchSize, this.claimSize * 2)
        if (claimed > 0) this.pacer.credit()
        this.idle = claimed === 0
        failures = 0
      } catch (err) {
        failures += 1
        this.reportError(err)
        await this.claimWake.wait(Math.min(5_000, 50 * 2 ** Math.min(failures, 7)))
        continue
      }
      // A short claim may only mean other workers held the rows (SKIP LOCKED); only an empty one
      // means nothing is pending: then sleep until a notification or the poll interval.
      if (claimed === 0) {
        this.exhausted = true
        await this.claimWake.wait(o.pollMs)
      }
    }
  }

  /**
   * Claims up to `want` jobs. With `queues`, visits them round-robin from a rotating start (the
   * operator's list bounds how many shares a tenant can get). Serving every queue, claims by tenant
   * instead (claimAcrossQueues()).
   */
  private async claimOnce(want: number): Promise<number> {
    const o = this.options
    if (!o.queues) return this.claimAcrossQueues(want)
    const queues = o.queues
    let got = 0
    const start = this.queueCursor++
    for (let i = 0; i < queues.length && got < want && this.state === 'running'; i++) {
      const queue = queues[(start + i) % queues.length]!
      const owner = this.owners.next()
      const sentAt = performance.now()
      const maxBytes = Math.max(1, o.claimMaxBytes - this.bufferedBytes)
      const claim = (await this.usesPriorities(queue)) ? jobClaimManyByPriority : jobClaimMany
      const rows = await claim(this.conn!.pool, { schema: o.schema, queue, owner, leaseMs: o.leaseMs, limit: want - got, maxBytes, types: o.types })
      got += this.accept(rows, () => queue, owner, sentAt)
      if (this.bufferedBytes >= o.claimMaxBytes) break
    }
    return got
  }

  /**
   * Whether `queue` needs the priority claim (some pending job has a priority other than 0), asked at
   * most every PRIORITY_CHECK_MS. Both claims keep tenants in their fair order; only the order of a
   * tenant's own jobs differs, so a priority pushed since the last check is honoured that much later.
   */
  private async usesPriorities(queue: string): Promise<boolean> {
    const now = performance.now()
    const known = this.priorityQueues.get(queue)
    if (known && now - known.at < PRIORITY_CHECK_MS) return known.mixed
    const mixed = await jobQueueHasPriorities(this.conn!.pool, { schema: this.options.schema, queue })
    if (this.priorityQueues.size > 10_000) this.priorityQueues.clear()
    this.priorityQueues.set(queue, { mixed, at: now })
    return mixed
  }

  /**
   * Serving every queue: each round visits up to `want` tenants with pending jobs from a rotating
   * cursor and takes an equal quantum from one queue of each, so a tenant's share is one share however
   * many queues it spreads its jobs over. A round that reached the last tenant starts the next one from
   * the first; an empty round that did not (every visited tenant's rows were locked, or of other
   * types) goes on from its cursor, a few rounds at most, before calling the queues empty.
   */
  private async claimAcrossQueues(want: number): Promise<number> {
    const o = this.options
    for (let round = 0; round < 8 && this.state === 'running'; round++) {
      const owner = this.owners.next()
      const sentAt = performance.now()
      const from = this.tenantCursor
      const r = await jobClaimAcrossQueues(this.conn!.pool, {
        schema: o.schema, afterTenant: from, lastQueues: this.lastQueues, owner, leaseMs: o.leaseMs, limit: want,
        maxBytes: Math.max(1, o.claimMaxBytes - this.bufferedBytes), types: o.types,
      })
      this.tenantCursor = r.tenants >= want && r.lastTenant !== null ? r.lastTenant : ''
      // The memory of queues served is a rotation hint only: bounded, and forgotten when full.
      if (this.lastQueues.size > 10_000) this.lastQueues.clear()
      for (const row of r.rows) this.lastQueues.set(row.tenant_id, row.queue)
      const got = this.accept(r.rows, (row) => (row as ClaimedRow & { queue: string }).queue, owner, sentAt)
      if (got > 0) return got
      // Nothing claimed: only a round that started at the first tenant and saw them all proves it.
      if (from === '' && this.tenantCursor === '') return 0
    }
    return 0
  }

  /** Buffers claimed rows as runs and starts what the free slots allow; returns how many. */
  private accept(rows: ClaimedRow[], queueOf: (row: ClaimedRow) => string, owner: string, sentAt: number): number {
    const o = this.options
    if (this.buffer.length === 0 && this.inFlight < o.concurrency) this.starved = true
    const claimedAt = performance.now()
    const leaseUntil = sentAt + o.leaseMs
    for (const row of rows) {
      const key = rowKey(row.tenant_id, row.id)
      const bytes = row.payload?.length ?? 0
      const run: Run = { job: toJob(row, queueOf(row)), row, owner, key, phase: 'buffered', startedAt: 0, claimedAt, leaseUntil, bytes }
      this.active.set(key, run)
      this.buffer.push(run)
      this.bufferedBytes += bytes
    }
    this.pump()
    return rows.length
  }

  /** Starts buffered runs while slots are free; asks for the next claim when the buffer runs low. */
  private pump(): void {
    // A handler that returns at once settles inside this loop and calls pump() again: the loop
    // already goes on, so that inner call returns instead of recursing once per buffered job.
    if (this.state !== 'running' || this.pumping) return
    this.pumping = true
    try {
      while (this.inFlight < this.options.concurrency && this.buffer.length > 0) {
        const run = this.buffer.shift()!
        this.bufferedBytes -= run.bytes
        if (run.phase !== 'buffered') continue
        // A job that sat in the buffer for long means claims outpace the handlers: claim less.
        if (performance.now() - run.claimedAt > BUFFER_WAIT_SHRINK_MS) this.claimSize = Math.max(this.minClaimSize, Math.floor(this.claimSize / 2))
        // Its lease may lapse before the next renewal (an event-loop stall, renewals failing): it may run
        // elsewhere soon, so it goes back unstarted, its attempt given back if the row is still ours.
        if (run.leaseUntil - performance.now() < this.startMarginMs) {
          this.finish(run, RELEASE)
          continue
        }
        this.execute(run)
      }
    } finally {
      this.pumping = false
    }
    if (!this.exhausted && this.buffer.length <= Math.floor(this.claimSize / 2)) this.claimWake.wake()
  }

  /** Resolves when no handler is running. */
  private handlersIdle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve()
    return new Promise((resolve) => this.idleWaiters.push(resolve))
  }

  // ---- running --------------------------------------------------------------------------------

  /**
   * Runs the handler. A handler that returns a value (not a promise) settles at once, with no promise
   * made for it; a promise is raced against the run's abort, so a handler that hangs past an abort
   * frees its slot anyway and whatever it returns later is ignored.
   */
  private execute(run: Run): void {
    this.inFlight += 1
    run.phase = 'running'
    run.startedAt = performance.now()
    const o = this.options
    if (o.handlerTimeoutMs !== undefined) run.timer = setTimeout(() => this.abort(run, 'timeout'), o.handlerTimeoutMs)
    if (this.listenerCount('job:started') > 0) this.safeEmit('job:started', run.job)
    let value: unknown
    try {
      value = this.handler(run.job as Job<Target>, new RunContext(run, o.nodeId, this.extendLeaseOf))
    } catch (err) {
      this.settle(run, this.failed(run, err))
      return
    }
    if (!isThenable(value)) {
      this.settle(run, this.completed(run, value))
      return
    }
    new Promise<unknown>((resolve, reject) => {
      if (run.abortError) return reject(run.abortError)
      run.interrupt = reject
      value.then(resolve, reject)
    }).then(
      (v) => this.settle(run, this.completed(run, v)),
      (err: unknown) => this.settle(run, this.failed(run, err)),
    )
  }

  /** A result that cannot be stored (not JSON, too large) fails the run like a thrown error. */
  private completed(run: Run, value: unknown): Settled {
    if (value === undefined || value === null) return { kind: 'completed', ...NO_RESULT, error: null }
    try {
      return { kind: 'completed', ...encodeResult(value, this.options.maxResultBytes), error: null }
    } catch (err) {
      return { kind: 'error', ...NO_RESULT, error: errorInfo(err, run.job.attempt) }
    }
  }

  private failed(run: Run, err: unknown): Settled {
    if (err instanceof JobBackOffError && run.abortReason === undefined) {
      return { kind: 'backoff', ...NO_RESULT, error: null, backOffMs: err.retryAfterMs }
    }
    return run.abortReason === 'shutdown'
      ? { kind: 'release', ...NO_RESULT, error: errorInfo(new JobAbortedError('shutdown', 'interrupted by worker shutdown'), run.job.attempt) }
      : { kind: 'error', ...NO_RESULT, error: errorInfo(err, run.job.attempt) }
  }

  private settle(run: Run, outcome: Settled): void {
    run.interrupt = undefined
    if (run.timer) clearTimeout(run.timer)
    this.inFlight -= 1
    if (run.phase === 'running') {
      this.finish(run, outcome)
      if (outcome.kind === 'backoff') this.backOffBuffered(run, outcome)
    }
    if (this.inFlight === 0 && this.idleWaiters.length > 0) for (const resolve of this.idleWaiters.splice(0)) resolve()
    this.pump()
  }

  /** A back-off holds the pair's jobs this worker has buffered as well: they go to held unstarted. */
  private backOffBuffered(run: Run, outcome: Settled): void {
    const { tenantId, queue } = run.job
    const keep: Run[] = []
    for (const b of this.buffer) {
      if (b.phase === 'buffered' && b.job.tenantId === tenantId && b.job.queue === queue) {
        this.bufferedBytes -= b.bytes
        this.finish(b, outcome)
      } else {
        keep.push(b)
      }
    }
    this.buffer.splice(0, this.buffer.length, ...keep)
  }

  private finish(run: Run, outcome: Settled): void {
    run.phase = 'finishing'
    const r = run.row
    this.completer!.add({
      tenantId: r.tenant_id,
      id: r.id,
      queue: run.job.queue,
      owner: run.owner,
      attempt: r.attempt,
      maxAttempts: r.max_attempts,
      retryPolicy: r.retry_policy,
      kind: outcome.kind,
      result: outcome.result,
      resultType: outcome.resultType,
      error: outcome.error,
      ...(outcome.backOffMs !== undefined ? { backOffMs: outcome.backOffMs } : {}),
      run,
    })
  }

  private abort(run: Run, reason: AbortReason): void {
    if (run.abortError) return
    run.abortReason = reason
    run.abortError = new JobAbortedError(reason)
    run.controller?.abort(run.abortError)
    run.interrupt?.(run.abortError)
  }

  /** Forgets a run whose row is no longer its own; a later run of the same job id stays. */
  private forget(run: Run): void {
    if (this.active.get(run.key) === run) this.active.delete(run.key)
  }

  private markLost(run: Run): void {
    if (run.phase === 'lost' || run.phase === 'done') return
    run.phase = 'lost'
    this.forget(run)
    this.abort(run, 'lease-lost')
    this.safeEmit('job:lost', { job: run.job })
  }

  private async extendLease(run: Run, ms: number): Promise<void> {
    validateInt('ms', ms, 1, 2 ** 31 - 1)
    if (run.phase !== 'running' && run.phase !== 'buffered') throw new JobAbortedError(run.abortReason ?? 'lease-lost')
    const ok = await this.keeper!.extend(run, ms)
    if (!ok) {
      if (run.phase === 'running') this.markLost(run)
      throw new JobAbortedError('lease-lost')
    }
  }

  private onRecorded(batch: RecordedOutcome[]): void {
    // Recorded outcomes free room for the next claim (see runClaimLoop); after an empty claim only a
    // notification or the poll interval starts the next one, or an idle worker would claim in vain
    // after every job it finishes.
    if (!this.exhausted) this.claimWake.wake()
    for (const { outcome, final, recorded, retryAt, error } of batch) {
      const run = outcome.run
      this.forget(run)
      run.phase = 'done'
      const job = run.job
      if (!recorded) {
        this.safeEmit('job:lost', { job })
        continue
      }
      if (final === 'completed') {
        if (this.listenerCount('job:completed') > 0) this.safeEmit('job:completed', { job, durationMs: performance.now() - run.startedAt })
      }
      else if (final === 'release' || final === 'backoff') this.safeEmit('job:released', { job })
      else if (run.abortReason === 'cancelled') this.safeEmit('job:cancelled', { job })
      else this.safeEmit('job:failed', { job, error: error ?? outcome.error ?? errorInfo('failed', run.job.attempt), willRetry: final === 'retry', ...(retryAt ? { retryAt } : {}) })
    }
  }

  // ---- heartbeat ------------------------------------------------------------------------------

  /** The lease keeper's own connection: made from the URL, or from the given pool's settings. */
  private newLeaseClient(connectTimeoutMs: number): pg.Client {
    const base: pg.ClientConfig = typeof this.target === 'string' ? { connectionString: this.target } : { ...((this.target as { options?: pg.ClientConfig }).options ?? {}) }
    return new pg.Client({
      ...base,
      application_name: 'pgqueue-worker-lease',
      keepAlive: true,
      connectionTimeoutMillis: connectTimeoutMs,
    })
  }

  private async heartbeatNode(): Promise<void> {
    const o = this.options
    const beat = await nodeHeartbeat(this.conn!.pool, {
      schema: o.schema,
      nodeId: o.nodeId,
      kind: 'worker',
      info: { pid: process.pid, instance: this.instance, queues: o.queues ?? null, concurrency: o.concurrency },
      recentMs: 3 * o.heartbeatMs,
    })
    this.warnAboutNodes(beat)
  }

  /** Warnings a node heartbeat can tell: another process with this node id, or no live Scheduler. */
  private warnAboutNodes(beat: NodeBeat): void {
    const o = this.options
    const now = performance.now()
    if (beat.sharedWith && now - this.warnedSharedAt > NODE_WARNING_GAP_MS) {
      this.warnedSharedAt = now
      o.logger.warn(`worker ${o.nodeId}: another process (pid ${String(beat.sharedWith.pid)}) beat ${beat.sharedWith.agoMs} ms ago under the same nodeId; give every Worker its own nodeId (ignore this once after a restart)`)
    }
    const schedulerAgo = beat.schedulerAgoMs ?? Number.POSITIVE_INFINITY
    if (schedulerAgo > o.noSchedulerWarnMs && now - this.startedAt > o.noSchedulerWarnMs && now - this.warnedSchedulerAt > NODE_WARNING_GAP_MS) {
      this.warnedSchedulerAt = now
      const since = beat.schedulerAgoMs === null ? 'no Scheduler has ever run' : `no Scheduler has beaten for ${Math.round(schedulerAgo / 1000)} s`
      o.logger.warn(`worker ${o.nodeId}: ${since} in schema "${o.schema}": delayed jobs, retries, held jobs and expired leases wait until one runs (Coordinator.create(...) or Scheduler.create(workerUrl).start())`)
    }
  }

  /** The node row's heartbeat, one at a time and never in the way of lease renewals. */
  private beatNode(): void {
    if (this.nodeBeat || this.state !== 'running') return
    this.nodeBeat = this.heartbeatNode()
      .catch((err) => this.reportError(err))
      .finally(() => (this.nodeBeat = undefined))
  }
}

/** How often a Worker asks whether a queue has pending jobs with a priority other than 0. */
const PRIORITY_CHECK_MS = 1_000

/** At most one warning of each kind about other nodes per this many ms. */
const NODE_WARNING_GAP_MS = 10 * 60_000

const RELEASE: Settled = { kind: 'release', result: null, resultType: null, error: null }

/** The options with `types` set to the handlers' types (refused when options.types says otherwise). */
function withHandlerTypes<Target>(options: WorkerOptions, handlers: JobHandlers<Target>): WorkerOptions {
  if (typeof handlers !== 'object' || handlers === null) throw new PgQueueValidationError('handler', 'must be a function or an object of functions by job type', handlers)
  const types = Object.keys(handlers)
  if (types.length === 0) throw new PgQueueValidationError('handler', 'must name at least one job type', handlers)
  for (const type of types) {
    if (typeof handlers[type] !== 'function') throw new PgQueueValidationError(`handler.${type}`, 'must be a function', handlers[type])
  }
  if (options?.types !== undefined) {
    throw new PgQueueValidationError('types', 'leave it out when handlers are given by type: the Worker claims exactly their types', options.types)
  }
  return { ...options, types }
}

/** One handler that runs the handler of the job's type (the claim only returns those types). */
function dispatchByType<Target>(handlers: JobHandlers<Target>): JobHandler<Target> {
  const byType = new Map(Object.entries(handlers))
  return (job, ctx) => {
    const handler = byType.get(job.type)
    if (handler === undefined) throw new Error(`no handler for job type ${JSON.stringify(job.type)}`)
    return handler(job, ctx)
  }
}
