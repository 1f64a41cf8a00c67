import { isDataError, retryDelayMs, sleep, type Logger } from '@pgqueue/core'
import { errorJson, type ErrorInfo } from './error-info.js'
import { jobFinishMany, type FinishInput, type Queryable } from './queries/jobs.js'
import { RetryPolicies } from './retry-policies.js'

/** How a run ended, before the retry policy decides between retry and failure. */
export interface RunOutcome {
  tenantId: string
  id: string
  queue: string
  attempt: number
  maxAttempts: number
  retryPolicy: unknown
  /** error: the handler failed (retried while attempts remain); release: interrupted by shutdown. */
  kind: 'completed' | 'error' | 'release'
  result: Buffer | null
  resultType: string | null
  error: ErrorInfo | null
  /** Set after a batch failed on a data error: this outcome is then recorded alone. */
  single?: boolean
}

/** What was written for one outcome. `recorded` is false when the lease had been lost (result discarded). */
export interface RecordedOutcome {
  outcome: RunOutcome
  final: FinishInput['outcome']
  recorded: boolean
  /** For retries: when the next run is due. */
  retryAt?: Date
}

export interface JobCompleterOptions {
  schema: string
  nodeId: string
  batchSize: number
  delayMs: number
  logger: Logger
  onRecorded: (batch: RecordedOutcome[]) => void
  onError: (err: unknown) => void
}

/**
 * Collects finished runs and records them in batches: one statement per batch, flushed when the batch
 * is full or `delayMs` after the first outcome, and never more than one flush at a time (outcomes that
 * arrive during a flush wait for the next, which is what makes batches grow under load). A failed flush
 * (database down) keeps its outcomes and retries with backoff: nothing is dropped while the worker runs.
 */
export class JobCompleter {
  private queue: RunOutcome[] = []
  private timer: NodeJS.Timeout | NodeJS.Immediate | undefined
  private flushing: Promise<void> | undefined
  private failures = 0
  private readonly policies: RetryPolicies

  constructor(
    private readonly db: Queryable,
    private readonly options: JobCompleterOptions,
  ) {
    this.policies = new RetryPolicies(options.schema)
  }

  get size(): number {
    return this.queue.length
  }

  /** The ids waiting to be recorded (their leases must still be renewed). */
  *pendingRuns(): Iterable<RunOutcome> {
    yield* this.queue
  }

  add(outcome: RunOutcome): void {
    this.queue.push(outcome)
    this.schedule()
  }

  /** Flushes until nothing is left or `timeoutMs` passes. */
  async drain(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs
    this.clearTimer()
    while ((this.queue.length > 0 || this.flushing) && Date.now() < deadline) {
      if (this.flushing) await this.flushing
      else await this.flushOnce()
    }
  }

  private clearTimer(): void {
    if (this.timer === undefined) return
    if (this.options.delayMs === 0) clearImmediate(this.timer as NodeJS.Immediate)
    else clearTimeout(this.timer as NodeJS.Timeout)
    this.timer = undefined
  }

  private schedule(): void {
    if (this.flushing || this.timer !== undefined || this.queue.length === 0) return
    const run = () => {
      this.timer = undefined
      void this.flushOnce()
    }
    if (this.queue.length >= this.options.batchSize) this.timer = setImmediate(run) as NodeJS.Immediate
    else if (this.options.delayMs === 0) this.timer = setImmediate(run)
    else this.timer = setTimeout(run, this.options.delayMs)
  }

  private flushOnce(): Promise<void> {
    if (this.flushing) return this.flushing
    const p = this.flush().finally(() => {
      this.flushing = undefined
      this.schedule()
    })
    this.flushing = p
    return p
  }

  private async flush(): Promise<void> {
    // After a data error, outcomes are retried alone (marked `single`) so the bad one is found.
    const batch = this.queue[0]?.single ? this.queue.splice(0, 1) : this.queue.splice(0, this.options.batchSize)
    if (batch.length === 0) return
    try {
      const failed = batch.filter((o) => o.kind === 'error' && o.attempt < o.maxAttempts)
      const policies = failed.length > 0 ? await this.policies.resolve(this.db, failed) : []
      const delays = new Map<RunOutcome, number>()
      failed.forEach((o, i) => delays.set(o, retryDelayMs(policies[i]!, o.attempt)))
      const items: FinishInput[] = batch.map((o) => ({
        tenantId: o.tenantId,
        id: o.id,
        attempt: o.attempt,
        outcome: o.kind === 'completed' ? 'completed' : o.kind === 'release' ? 'release' : delays.has(o) ? 'retry' : 'failed',
        result: o.result,
        resultType: o.resultType,
        error: o.error ? errorJson(o.error) : null,
        delayMs: delays.get(o) ?? 0,
      }))
      const recorded = await jobFinishMany(this.db, { schema: this.options.schema, nodeId: this.options.nodeId, items })
      this.failures = 0
      const now = Date.now()
      this.options.onRecorded(
        items.map((item, i) => ({
          outcome: batch[i]!,
          final: item.outcome,
          recorded: recorded.has(item.id),
          ...(item.outcome === 'retry' ? { retryAt: new Date(now + item.delayMs) } : {}),
        })),
      )
    } catch (err) {
      if (isDataError(err) && batch.length > 1) {
        // One unstorable outcome must not block the others forever: record them one by one.
        this.queue.unshift(...batch.map((o) => ({ ...o, single: true })))
        this.options.onError(err)
        return
      }
      if (isDataError(err) && (batch[0]!.result !== null || batch[0]!.error !== null)) {
        // Still refused alone: keep the outcome, drop what PostgreSQL would not store.
        const o = batch[0]!
        this.queue.unshift({ ...o, result: null, resultType: null, error: { message: `outcome could not be stored: ${(err as Error).message}`, at: new Date().toISOString() } })
        this.options.onError(err)
        return
      }
      // Keep the batch: it is retried first. Its leases keep being renewed meanwhile, and if they
      // expire the Scheduler reruns the jobs and this batch's rows are then discarded by the lease check.
      this.queue.unshift(...batch)
      this.failures += 1
      this.options.onError(err)
      await sleep(Math.min(5_000, 50 * 2 ** Math.min(this.failures, 7)))
    }
  }
}
