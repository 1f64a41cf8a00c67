import { performance } from 'node:perf_hooks'
import { context, type Span } from '@opentelemetry/api'
import { errorInfo } from '@pgqueue/core/internal'
import { JobAbortedError, JobBackOffError, type AbortReason, type FlowAddNode, type FlowHandle, type FlowParent, type Job, type JobContext, type JobHandler } from './job.js'
import type { RunOutcome } from './job-completer.js'
import { encodeResult } from './result.js'
import type { Run } from './run.js'
import type { WorkerTelemetry } from './worker-telemetry.js'

/** What a finished handler produced, before it becomes a RunOutcome. */
export type Settled = Pick<RunOutcome, 'kind' | 'result' | 'resultType' | 'error' | 'backOffMs'>

const NO_RESULT = { result: null, resultType: null } as const

/** The outcome of a run given back unstarted or interrupted by shutdown: not counted as an attempt. */
export const RELEASE: Settled = { kind: 'release', ...NO_RESULT, error: null }

/** What the executor needs from its Worker. */
export interface JobExecutorDeps<Target> {
  handler: JobHandler<Target>
  nodeId: string
  handlerTimeoutMs: number | undefined
  maxResultBytes: number
  /** Called as a run starts, when someone listens for 'job:started'. */
  started?: (run: Run) => void
  /** Hands a settled run's outcome on to be recorded. */
  finish: (run: Run, outcome: Settled) => void
  /** A handler slot came free. */
  slotFreed: () => void
  extendLease: (run: Run, ms: number) => Promise<void>
  /** ctx.parents() and ctx.flow.add(), run on the Worker's pool. */
  flows: RunFlows
}

/** The flow calls a handler's ctx makes. */
export interface RunFlows {
  parents(job: Job): Promise<FlowParent[]>
  /** `span`: the run's process span, parent of the add's send span (undefined: not traced). */
  add(job: Job, nodes: readonly FlowAddNode[], span: Span | undefined): Promise<{ flowId: string; jobs: Record<string, string> }>
}

/** The run's AbortSignal, made on first use (already aborted when the run was). */
function signalOf(run: Run): AbortSignal {
  if (!run.controller) {
    run.controller = new AbortController()
    if (run.abortError) run.controller.abort(run.abortError)
  }
  return run.controller.signal
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === 'object' || typeof value === 'function') && value !== null && typeof (value as { then?: unknown }).then === 'function'
}

/** The handler's ctx: one small object per run, its members on the prototype. */
class RunContext implements JobContext {
  constructor(
    private readonly run: Run,
    readonly nodeId: string,
    private readonly extend: (run: Run, ms: number) => Promise<void>,
    private readonly flows: RunFlows,
  ) {}
  parents(): Promise<FlowParent[]> {
    return this.flows.parents(this.run.job)
  }
  get flow(): FlowHandle {
    return { add: (nodes) => this.flows.add(this.run.job, nodes, this.run.span) }
  }
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
 * Runs handlers (River's executor): one call per run, the outcome handed to finish(), aborts by
 * reason (shutdown, cancel, lease loss, timeout). Counts the handlers in flight, so stop() can wait
 * for them.
 */
export class JobExecutor<Target> {
  private running = 0
  private idleWaiters: (() => void)[] = []
  /** Set by the Worker at start when telemetry records; undefined costs one test per run. */
  telemetry: WorkerTelemetry | undefined

  constructor(private readonly d: JobExecutorDeps<Target>) {}

  /** Handlers running now. */
  get inFlight(): number {
    return this.running
  }

  /**
   * Runs the handler. A handler that returns a value (not a promise) settles at once, with no promise
   * made for it; a promise is raced against the run's abort, so a handler that hangs past an abort
   * frees its slot anyway and whatever it returns later is ignored.
   */
  execute(run: Run): void {
    this.running += 1
    run.phase = 'running'
    run.startedAt = performance.now()
    const d = this.d
    if (d.handlerTimeoutMs !== undefined) run.timer = setTimeout(() => this.abort(run, 'timeout'), d.handlerTimeoutMs)
    d.started?.(run)
    let value: unknown
    const traced = this.telemetry?.startProcess(run)
    try {
      const ctx = new RunContext(run, d.nodeId, d.extendLease, d.flows)
      // The handler runs in its process span's context, so spans it starts are children of it.
      value = traced ? context.with(traced, d.handler, undefined, run.job as Job<Target>, ctx) : d.handler(run.job as Job<Target>, ctx)
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

  /** Aborts a run once: its signal fires and a handler still running is no longer waited for. */
  abort(run: Run, reason: AbortReason): void {
    if (run.abortError) return
    run.abortReason = reason
    run.abortError = new JobAbortedError(reason)
    run.controller?.abort(run.abortError)
    run.interrupt?.(run.abortError)
  }

  /** Resolves when no handler is running. */
  idle(): Promise<void> {
    if (this.running === 0) return Promise.resolve()
    return new Promise((resolve) => this.idleWaiters.push(resolve))
  }

  /** A result that cannot be stored (not JSON, too large) fails the run like a thrown error. */
  private completed(run: Run, value: unknown): Settled {
    if (value === undefined || value === null) return { kind: 'completed', ...NO_RESULT, error: null }
    try {
      return { kind: 'completed', ...encodeResult(value, this.d.maxResultBytes), error: null }
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
    this.running -= 1
    this.telemetry?.endProcess(run, outcome)
    if (run.phase === 'running') this.d.finish(run, outcome)
    if (this.running === 0 && this.idleWaiters.length > 0) for (const resolve of this.idleWaiters.splice(0)) resolve()
    this.d.slotFreed()
  }
}
