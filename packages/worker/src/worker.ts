import { randomUUID } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { performance } from 'node:perf_hooks'
import pg from 'pg'
import {
  resolveTelemetry,
  NotificationListener,
  PgQueueStoppedError,
  PgQueueValidationError,
  checkInstallation,
  connect,
  errorInfo,
  jobsChannel,
  listenUrlFor,
  nodeDelete,
  nodeHeartbeat,
  type NodeBeat,
  sleep,
  validateInt,
  type Connectable,
  type Connection,
  type ErrorInfo,
  type Telemetry,
} from '@pgqueue/core/internal'
import { ClaimLoop } from './claim-loop.js'
import { JobAbortedError, type Job, type JobHandler, type JobHandlers } from './job.js'
import { JobCompleter, type RecordedOutcome } from './job-completer.js'
import { JobExecutor, RELEASE, type Settled } from './job-executor.js'
import { LeaseKeeper } from './lease-keeper.js'
import { LeaseOwners } from './lease-owner.js'
import { resolveWorkerOptions, type ResolvedWorkerOptions, type WorkerOptions } from './options.js'
import type { Run } from './run.js'
import { runFlows } from './run-flows.js'
import { WorkerTelemetry } from './worker-telemetry.js'

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

/**
 * Claims pending jobs in fair order, runs the handler with a lease that a heartbeat keeps renewing,
 * and records outcomes in batches. See the package README for the options and the guarantees.
 *
 * The parts, each in its own file: ClaimLoop (claims and hands out runs), JobExecutor (runs a
 * handler), LeaseKeeper (renews leases, notices cancels and lost leases), JobCompleter (records
 * outcomes in batches). The Worker wires them, owns the lifecycle and the map of runs it holds leases
 * for, and turns what happens to a run into events.
 */
export class Worker<Target = unknown> extends EventEmitter<WorkerEvents> {
  /** The options in effect, defaults filled in. */
  readonly options: ResolvedWorkerOptions
  private readonly target: Connectable
  private conn: Connection | undefined
  /** Resolved at start(); undefined: nothing recorded. */
  private telemetry: Telemetry | undefined
  private listener: NotificationListener | undefined
  private completer: JobCompleter | undefined
  private state: 'new' | 'running' | 'stopping' | 'stopped' = 'new'
  private stopPromise: Promise<void> | undefined
  /** Every run whose lease this worker holds, by rowKey(tenant, id). */
  private readonly active = new Map<string, Run>()
  private readonly owners: LeaseOwners
  private readonly executor: JobExecutor<Target>
  private claimLoop: ClaimLoop | undefined
  private keeper: LeaseKeeper | undefined
  private nodeBeat: Promise<void> | undefined
  /** Tells this process's node row from another process using the same node id. */
  private readonly instance = randomUUID()
  /** When start() succeeded (monotonic), and when each node warning was last given. */
  private startedAt = Number.POSITIVE_INFINITY
  private warnedSharedAt = Number.NEGATIVE_INFINITY
  private warnedSchedulerAt = Number.NEGATIVE_INFINITY

  private constructor(target: Connectable, options: WorkerOptions, handler: JobHandler<Target>) {
    super()
    if (typeof handler !== 'function') throw new PgQueueValidationError('handler', 'must be a function', handler)
    if (typeof target !== 'string' && (typeof target !== 'object' || target === null)) {
      throw new PgQueueValidationError('url', 'must be a connection string or a pg.Pool', target)
    }
    this.options = resolveWorkerOptions(options)
    this.target = target
    this.owners = new LeaseOwners(this.options.nodeId)
    this.executor = new JobExecutor<Target>({
      handler,
      nodeId: this.options.nodeId,
      handlerTimeoutMs: this.options.handlerTimeoutMs,
      maxResultBytes: this.options.maxResultBytes,
      started: (run) => {
        if (this.listenerCount('job:started') > 0) this.safeEmit('job:started', run.job)
      },
      finish: (run, outcome) => this.finish(run, outcome),
      slotFreed: () => this.claimLoop?.pump(),
      extendLease: (run, ms) => this.extendLease(run, ms),
      flows: runFlows(() => {
        if (!this.conn) throw new PgQueueStoppedError('Worker')
        return this.conn.pool
      }, this.options.schema, () => this.telemetry),
    })
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
    const conn = connect(this.target, { max: o.poolSize, applicationName: 'pgqueue-worker', queryTimeoutMs: o.queryTimeoutMs })
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
    const telemetry = resolveTelemetry(o.telemetry, { name: '@pgqueue/worker' })
    this.telemetry = telemetry
    const workerTelemetry = telemetry && new WorkerTelemetry(telemetry)
    this.executor.telemetry = workerTelemetry
    this.completer = new JobCompleter(this.conn.pool, {
      telemetry: workerTelemetry,
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
      onCancelRequested: (run) => this.executor.abort(run, 'cancelled'),
      onError: (err) => this.reportError(err),
      onTick: () => this.beatNode(),
    })
    await this.heartbeatNode().catch((err) => this.reportError(err))
    this.claimLoop = new ClaimLoop({
      options: o,
      pool: this.conn.pool,
      owners: this.owners,
      active: this.active,
      inFlight: () => this.executor.inFlight,
      unrecorded: () => this.completer?.size ?? 0,
      execute: (run) => this.executor.execute(run),
      release: (run) => this.finish(run, RELEASE),
      reportError: (err) => this.reportError(err),
    })
    this.claimLoop.start()
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

  /**
   * The same as stop() with the default timeout: a Worker holds connections only between start() and
   * stop() and cannot start again afterwards, so stopping it is closing it. Here so that every
   * component ends with close().
   */
  close(): Promise<void> {
    return this.stop()
  }

  /**
   * Bounded by timeoutMs for the handlers plus a grace for recording outcomes (timeoutMs, between 1 and
   * 5 s): on a dead network the steps that need the database would wait for minutes, so when the grace
   * runs out the connections are cut and stop() resolves; outcomes not recorded by then come back when
   * their leases expire (at least once, nothing lost).
   */
  private async shutdown(timeoutMs: number): Promise<void> {
    this.state = 'stopping'
    const graceMs = Math.min(5_000, Math.max(1_000, timeoutMs))
    const limit = new AbortController()
    const steps = this.stopSteps(timeoutMs, graceMs)
    const late = sleep(timeoutMs + graceMs, limit.signal).then(() => !limit.signal.aborted)
    const ranOut = await Promise.race([steps.then(() => false), late])
    limit.abort()
    if (ranOut) {
      this.options.logger.warn({ component: 'worker', nodeId: this.options.nodeId }, 'stop ran out of time waiting for the database; connections cut, unrecorded outcomes come back when their leases expire')
      steps.catch(() => {})
      this.cutConnections()
    }
    this.state = 'stopped'
    this.emit('stopped')
  }

  private async stopSteps(timeoutMs: number, graceMs: number): Promise<void> {
    const handlersDeadline = performance.now() + timeoutMs
    const unstarted = (await this.claimLoop?.stop()) ?? []
    for (const run of unstarted) if (run.phase === 'buffered') this.finish(run, RELEASE)
    if (this.executor.inFlight > 0) {
      const timeout = new AbortController()
      await Promise.race([this.executor.idle(), sleep(Math.max(0, handlersDeadline - performance.now()), timeout.signal)])
      timeout.abort()
      for (const run of this.active.values()) if (run.phase === 'running') this.executor.abort(run, 'shutdown')
      await this.executor.idle()
    }
    await this.completer?.drain(Math.max(graceMs, handlersDeadline - performance.now()))
    await this.keeper?.stop()
    await this.nodeBeat
    await this.listener?.stop()
    await nodeDelete(this.conn!.pool, { schema: this.options.schema, nodeId: this.options.nodeId }).catch((err) => this.reportError(err))
    await this.conn?.close()
  }

  /** Drops every connection at once (the pool's, the lease keeper's, the listener's). */
  private cutConnections(): void {
    this.conn?.destroy()
    void this.keeper?.stop()
    void this.listener?.stop()
    void this.conn?.close().catch(() => {})
  }

  private reportError(err: unknown): void {
    const error = err instanceof Error ? err : new Error(String(err))
    this.options.logger.error({ nodeId: this.options.nodeId, err: error }, `worker ${this.options.nodeId}: ${error.message}`)
    // An 'error' event without a listener would throw and crash the process.
    if (this.listenerCount('error') > 0) this.emit('error', error)
  }

  private safeEmit<K extends keyof WorkerEvents>(event: K, ...args: WorkerEvents[K]): void {
    try {
      ;(this.emit as (e: string, ...a: unknown[]) => boolean)(event, ...args)
    } catch (err) {
      this.options.logger.error({ nodeId: this.options.nodeId, event: String(event), err }, `worker ${this.options.nodeId}: a '${String(event)}' listener threw`)
    }
  }

  private onNotify(): void {
    this.claimLoop?.notified()
  }

  // ---- recording ------------------------------------------------------------------------------

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
    // A back-off holds the pair's jobs this worker has buffered as well: they go to held unstarted.
    if (outcome.kind === 'backoff') for (const b of this.claimLoop?.takeBuffered(run.job.tenantId, run.job.queue) ?? []) this.finish(b, { ...outcome })
  }

  /** Forgets a run whose row is no longer its own; a later run of the same job id stays. */
  private forget(run: Run): void {
    if (this.active.get(run.key) === run) this.active.delete(run.key)
  }

  private markLost(run: Run): void {
    if (run.phase === 'lost' || run.phase === 'done') return
    run.phase = 'lost'
    this.forget(run)
    this.executor.abort(run, 'lease-lost')
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
    this.claimLoop?.recorded()
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
      o.logger.warn({ nodeId: o.nodeId, sharedWithPid: beat.sharedWith.pid }, `worker ${o.nodeId}: another process (pid ${String(beat.sharedWith.pid)}) beat ${beat.sharedWith.agoMs} ms ago under the same nodeId; give every Worker its own nodeId (ignore this once after a restart)`)
    }
    const schedulerAgo = beat.schedulerAgoMs ?? Number.POSITIVE_INFINITY
    if (schedulerAgo > o.noSchedulerWarnMs && now - this.startedAt > o.noSchedulerWarnMs && now - this.warnedSchedulerAt > NODE_WARNING_GAP_MS) {
      this.warnedSchedulerAt = now
      const since = beat.schedulerAgoMs === null ? 'no Scheduler has ever run' : `no Scheduler has beaten for ${Math.round(schedulerAgo / 1000)} s`
      o.logger.warn({ nodeId: o.nodeId, schedulerAgoMs: beat.schedulerAgoMs }, `worker ${o.nodeId}: ${since} in schema "${o.schema}": delayed jobs, retries, held jobs and expired leases wait until one runs (Coordinator.create(...) or Scheduler.create(workerUrl).start())`)
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

/** At most one warning of each kind about other nodes per this many ms. */
const NODE_WARNING_GAP_MS = 10 * 60_000

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
