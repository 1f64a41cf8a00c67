import { performance } from 'node:perf_hooks'
import { retryDelayMs, sleep, type Logger } from '@pgqueue/core/internal'
import { isTransientError } from './completion-errors.js'
import { ERROR_CODES, errorJson, errorRecord, type ErrorInfo, type Queryable } from '@pgqueue/core/internal'
import { jobFinishMany, jobLockedAmong, rowKey, type FinishInput } from './queries/jobs.js'
import { RetryPolicies } from './retry-policies.js'
import type { Run } from './run.js'
import type { WorkerTelemetry } from './worker-telemetry.js'

/** How a run ended, before the retry policy decides between retry and failure. */
export interface RunOutcome {
  tenantId: string
  id: string
  queue: string
  /** The run's lease owner (its identity, see FinishInput.owner). */
  owner: string
  attempt: number
  maxAttempts: number
  retryPolicy: unknown
  /** error: the handler failed (retried while attempts remain); release: not started, or interrupted
   *  by shutdown (back to pending, the attempt given back). */
  kind: 'completed' | 'error' | 'release' | 'backoff'
  /** backoff: how long the tenant's queue waits (JobBackOffError). */
  backOffMs?: number
  result: Buffer | null
  resultType: string | null
  error: ErrorInfo | null
  /** The run this outcome belongs to (events name its job, not a later run's). */
  run: Run
}

/** What was written for one outcome. `recorded` is false when the lease had been lost (result discarded). */
export interface RecordedOutcome {
  outcome: RunOutcome
  final: FinishInput['outcome']
  recorded: boolean
  /** For retries: when the next run is due. */
  retryAt?: Date
  /** The error stored when it is not the outcome's own (an outcome that could not be stored as it was). */
  error?: ErrorInfo
}

export interface JobCompleterOptions {
  schema: string
  nodeId: string
  batchSize: number
  /** Largest batch in bytes (results and errors), one outcome at least. */
  maxBytes: number
  delayMs: number
  /** Longest row lock wait of a completion statement (see jobFinishMany). */
  lockTimeoutMs: number
  logger: Logger
  onRecorded: (batch: RecordedOutcome[]) => void
  onError: (err: unknown) => void
  /** Settle spans and the operation duration of each recording statement, when telemetry records. */
  telemetry?: WorkerTelemetry | undefined
}

/** An outcome waiting to be recorded, with what isolating it after failures needs. */
interface Entry {
  outcome: RunOutcome
  /** Set when a batch holding it failed on a non-transient error: it goes in batches of at most this many. */
  chunk?: number
  /** Failures of this outcome recorded alone. */
  strikes: number
  /** Times it was set aside because another transaction held its row (not its fault: no strike). */
  waits?: number
  /** Batches recorded (of others) when a statement holding it first failed: later ones show the
   *  database takes other outcomes, so this one is at fault. */
  epoch?: number
  /** Not tried again before this time (performance.now()). */
  notBefore: number
  /** Replaced by a plain failure: the real result or error could not be stored. */
  degraded?: string
  degradedAtStrike?: number
}

/** Strikes before an outcome that fails alone, while others are stored, is recorded as failed instead. */
const DEGRADE_AFTER = 3
/** Strikes before it is recorded as failed even when nothing else was stored meanwhile. */
const DEGRADE_ANYWAY_AFTER = 8
/** Further strikes of the plain failure before the outcome is given up (its lease then lapses). */
const ABANDON_AFTER = 5

function backoffMs(n: number): number {
  return Math.min(5_000, 50 * 2 ** Math.min(n, 7))
}

/** About how many bytes an outcome adds to the statement text (bytea goes as hex). */
function bytesOf(o: RunOutcome): number {
  return 200 + (o.result ? 2 * o.result.length : 0) + (o.error ? o.error.message.length + (o.error.stack?.length ?? 0) : 0)
}

/**
 * Collects finished runs and records them in batches: one statement per batch, flushed when the batch
 * is full (in count or bytes) or `delayMs` after the first outcome, and never more than one flush at a
 * time (outcomes that arrive during a flush wait for the next, which is what makes batches grow under
 * load).
 * A failed flush is handled by the kind of error. A transient one (database down, connection lost,
 * deadlock) keeps the batch and retries it with backoff: nothing is dropped while the worker runs, and
 * the leases keep being renewed meanwhile. Any other error (a value PostgreSQL refuses, a RangeError
 * building the statement) may come from one outcome, so the batch is split in halves until the outcome
 * at fault stands alone; the others are recorded on the way. The outcome at fault is set aside (the
 * queue goes on without it) and tried again with backoff; after a few failures it is recorded as
 * failed with the error "outcome could not be stored", and if even that is refused it is given up
 * (reported, its lease left to lapse and the job to be rescued).
 */
export class JobCompleter {
  private queue: Entry[] = []
  private readonly quarantine: Entry[] = []
  private timer: NodeJS.Timeout | undefined
  private immediate: NodeJS.Immediate | undefined
  private flushing: Promise<void> | undefined
  private failures = 0
  /** Statements failed in a row on non-transient errors: past a few, the database probably refuses
   *  everything (a detached partition), not one outcome, so each further try waits with backoff. */
  private streak = 0
  /** Batches recorded so far: tells an outcome at fault from a database refusing everything. */
  private epoch = 0
  private readonly policies: RetryPolicies

  constructor(
    private readonly db: Queryable,
    private readonly options: JobCompleterOptions,
  ) {
    this.policies = new RetryPolicies(options.schema)
  }

  /** Outcomes not recorded yet. */
  get size(): number {
    return this.queue.length + this.quarantine.length
  }

  add(outcome: RunOutcome): void {
    this.queue.push({ outcome, strikes: 0, notBefore: 0 })
    this.schedule()
  }

  /** Flushes until nothing is left or `timeoutMs` passes. */
  async drain(timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs
    this.clearTimer()
    while ((this.size > 0 || this.flushing) && performance.now() < deadline) {
      if (this.flushing) await this.flushing
      else if (this.queue.length === 0) {
        const wait = Math.min(...this.quarantine.map((e) => e.notBefore)) - performance.now()
        if (wait > 0) await sleep(Math.min(wait, deadline - performance.now()))
        if (performance.now() < deadline) await this.flushOnce()
      } else await this.flushOnce()
    }
    this.clearTimer()
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    if (this.immediate !== undefined) clearImmediate(this.immediate)
    this.timer = undefined
    this.immediate = undefined
  }

  private schedule(): void {
    if (this.flushing || this.timer !== undefined || this.immediate !== undefined) return
    const run = () => {
      this.timer = undefined
      this.immediate = undefined
      void this.flushOnce()
    }
    if (this.queue.length > 0) {
      if (this.queue.length >= this.options.batchSize || this.options.delayMs === 0) this.immediate = setImmediate(run)
      else this.timer = setTimeout(run, this.options.delayMs)
    } else if (this.quarantine.length > 0) {
      const wait = Math.min(...this.quarantine.map((e) => e.notBefore)) - performance.now()
      this.timer = setTimeout(run, Math.max(0, Math.ceil(wait)))
    }
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

  /** The next batch: a set-aside outcome whose wait is over, else the head of the queue within budget. */
  private take(): { batch: Entry[]; alone: boolean } {
    const now = performance.now()
    const due = this.quarantine.findIndex((e) => e.notBefore <= now)
    if (due >= 0) return { batch: this.quarantine.splice(due, 1), alone: true }
    if (this.queue.length === 0) return { batch: [], alone: false }
    const limit = Math.min(this.queue[0]!.chunk ?? this.options.batchSize, this.options.batchSize)
    let n = 0
    let bytes = 0
    while (n < this.queue.length && n < limit) {
      const b = bytesOf(this.queue[n]!.outcome)
      if (n > 0 && bytes + b > this.options.maxBytes) break
      bytes += b
      n += 1
    }
    return { batch: this.queue.splice(0, n), alone: false }
  }

  private async flush(): Promise<void> {
    const { batch, alone } = this.take()
    if (batch.length === 0) return
    // An outcome set aside for a locked row is only tried again once the row is free.
    if (alone && batch[0]!.waits && (await this.setAsideLocked(batch)) !== undefined) return
    try {
      await this.record(batch)
      this.failures = 0
      this.streak = 0
      this.epoch += 1
    } catch (err) {
      this.options.onError(err)
      // A lock wait ran out (55P03): set aside the outcomes whose rows another transaction holds (a
      // tenant's open transaction on its own running job) and record the rest at once. With no such
      // row the wait was on something else (a partition being rewritten): retry all with backoff.
      if ((err as { code?: unknown }).code === '55P03') {
        const rest = await this.setAsideLocked(batch)
        if (rest !== undefined) {
          this.queue.unshift(...rest)
          return
        }
      }
      if (isTransientError(err)) {
        // Keep the batch: it is retried first. If its leases expire meanwhile, the Scheduler reruns the
        // jobs and this batch's rows are then discarded by the owner check.
        if (alone) this.quarantine.push(batch[0]!)
        else this.queue.unshift(...batch)
        this.failures += 1
        await sleep(backoffMs(this.failures))
        return
      }
      for (const e of batch) e.epoch ??= this.epoch
      if (batch.length > 1) {
        const half = Math.ceil(batch.length / 2)
        for (const e of batch) e.chunk = half
        this.queue.unshift(...batch)
      } else this.strike(batch[0]!, err)
      // Outcomes set aside wait on their own backoff; batches of the queue failing in a row wait here.
      if (!alone && ++this.streak > 3) await sleep(backoffMs(this.streak - 3))
    }
  }

  /**
   * Sets aside the outcomes of `batch` whose rows are locked by another transaction now, with backoff
   * and no strike. Returns the others, or undefined when none was locked (or the check failed).
   */
  private async setAsideLocked(batch: Entry[]): Promise<Entry[] | undefined> {
    let locked: Set<string>
    try {
      locked = await jobLockedAmong(this.db, {
        schema: this.options.schema,
        tenantIds: batch.map((e) => e.outcome.tenantId),
        ids: batch.map((e) => e.outcome.id),
        owners: batch.map((e) => e.outcome.owner),
      })
    } catch (err) {
      this.options.onError(err)
      return undefined
    }
    if (locked.size === 0) return undefined
    const rest: Entry[] = []
    const now = performance.now()
    for (const e of batch) {
      if (!locked.has(rowKey(e.outcome.tenantId, e.outcome.id))) {
        rest.push(e)
        continue
      }
      e.waits = (e.waits ?? 0) + 1
      e.notBefore = now + backoffMs(e.waits)
      this.quarantine.push(e)
    }
    return rest
  }

  /** One more failure of an outcome recorded alone: set it aside, degrade it, or give it up. */
  private strike(e: Entry, err: unknown): void {
    e.strikes += 1
    const message = err instanceof Error ? err.message : String(err)
    if (e.degraded !== undefined) {
      if (e.strikes - e.degradedAtStrike! >= ABANDON_AFTER) {
        this.options.logger.error({ nodeId: this.options.nodeId, jobId: e.outcome.id, tenantId: e.outcome.tenantId }, `worker ${this.options.nodeId}: gave up recording job ${e.outcome.id} of tenant ${e.outcome.tenantId}: ${message}`)
        this.options.onRecorded([{ outcome: e.outcome, final: 'failed', recorded: false }])
        return
      }
    } else if (e.strikes >= DEGRADE_ANYWAY_AFTER || (e.strikes >= DEGRADE_AFTER && this.epoch > e.epoch!)) {
      e.degraded = message
      e.degradedAtStrike = e.strikes
    }
    e.notBefore = performance.now() + backoffMs(e.strikes)
    this.quarantine.push(e)
  }

  private async record(batch: Entry[]): Promise<void> {
    const failed = batch.filter((e) => e.degraded === undefined && e.outcome.kind === 'error' && e.outcome.attempt < e.outcome.maxAttempts).map((e) => e.outcome)
    const policies = failed.length > 0 ? await this.policies.resolve(this.db, failed) : []
    const delays = new Map<RunOutcome, number>()
    failed.forEach((o, i) => delays.set(o, retryDelayMs(policies[i]!, o.attempt)))
    const now = new Date()
    const replaced = new Map<number, ErrorInfo>()
    const items: FinishInput[] = batch.map(({ outcome: o, degraded }, k) => {
      if (degraded !== undefined) {
        const error = errorRecord({ message: `outcome could not be stored: ${degraded}`, name: 'OutcomeNotStoredError', code: ERROR_CODES.outcomeNotStored, attempt: o.attempt, now })
        replaced.set(k, error)
        return { tenantId: o.tenantId, id: o.id, owner: o.owner, outcome: 'failed', result: null, resultType: null, error: errorJson(error), delayMs: 0 }
      }
      return {
        tenantId: o.tenantId,
        id: o.id,
        owner: o.owner,
        outcome: o.kind === 'completed' ? 'completed' : o.kind === 'release' ? 'release' : o.kind === 'backoff' ? 'backoff' : delays.has(o) ? 'retry' : 'failed',
        result: o.result,
        resultType: o.resultType,
        error: o.error ? errorJson(o.error) : null,
        delayMs: o.kind === 'backoff' ? o.backOffMs ?? 0 : delays.get(o) ?? 0,
      }
    })
    const tel = this.options.telemetry
    const startedAt = tel ? performance.now() : 0
    let recorded: Set<number>
    try {
      recorded = await jobFinishMany(this.db, { schema: this.options.schema, nodeId: this.options.nodeId, items, lockTimeoutMs: this.options.lockTimeoutMs })
    } catch (err) {
      tel?.settle(items, batch.map((e) => e.outcome.run), startedAt, err)
      throw err
    }
    tel?.settle(items, batch.map((e) => e.outcome.run), startedAt)
    const recordedAt = Date.now()
    this.options.onRecorded(
      items.map((item, i) => ({
        outcome: batch[i]!.outcome,
        final: item.outcome,
        recorded: recorded.has(i),
        ...(item.outcome === 'retry' ? { retryAt: new Date(recordedAt + item.delayMs) } : {}),
        ...(replaced.has(i) ? { error: replaced.get(i)! } : {}),
      })),
    )
  }
}
