import { sql, type Transaction } from 'kysely'
import {
  checkInstallation,
  connect,
  LoopService,
  PgQueueValidationError,
  resolveTelemetry,
  sleep,
  startPushTrace,
  uuidv7,
  type Connectable,
  type Connection,
  type Database,
  type PushTrace,
  type ServiceEvents,
  type Telemetry,
} from '@pgqueue/core/internal'
import { resolveScheduleRunnerOptions, type ResolvedScheduleRunnerOptions, type ScheduleRunnerOptions } from './options.js'
import { checkScheduleRow, planFire, type MissedPolicy } from './plan.js'
import {
  scheduleAdvance,
  scheduleClaimAllDue,
  scheduleCountDue,
  scheduleClaimDue,
  scheduleDueTenants,
  schedulePushJobs,
  type ClaimedScheduleRow,
  type ScheduleAdvanceInput,
  type ScheduleJobInput,
} from './queries/schedules.js'
import { queueClockTryLockMany } from './queries/queue-clocks.js'
import { transactionSetTimeouts } from './queries/transaction.js'

/** Pauses before a batch looks again at fair clocks that were busy, before deferring their schedules. */
const CLOCK_RETRY_PAUSES_MS = [5, 15, 40]

/** Latest next due time the runner writes: the end of year 9999 UTC, within every timestamp range. */
const MAX_NEXT_RUN_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999)

/**
 * True for an error that belongs to one schedule's job, so the same job fails the same way on every
 * retry: a data exception (class 22), an integrity violation (23: a check, a trigger), a value beyond
 * a limit (54: an index row too large for a very long queue name), or push_jobs() refusing the row's
 * tenant (42501 raised by pgqueue itself, e.g. an empty tenant id written by hand).
 */
function isScheduleError(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null
  const code = typeof e?.code === 'string' ? e.code : ''
  if (code.startsWith('22') || code.startsWith('23') || code.startsWith('54')) return true
  return code === '42501' && typeof e?.message === 'string' && e.message.startsWith('pgqueue:')
}

/** lock_not_available: a lock_timeout (or NOWAIT) ran out. */
function isLockWait(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === '55P03'
}

/** Pools whose clients already carry a no-op 'error' listener (see connection()). */
const guardedPools = new WeakSet<object>()
function ignoreClientError(): void {}

/** What one batch did. */
export interface ScheduleBatchResult {
  /** Due schedules locked and handled by this batch. */
  claimed: number
  /** Jobs pushed (one per firing schedule). */
  fired: number
  /** Schedules whose missed due times were skipped ('skip' policy): advanced, no job. */
  skipped: number
  /** Rows that could not be read, or whose job the database refused; deferred by invalidRetryMs. */
  invalid: number
  /** Due schedules left due for a later batch because their job's push would have waited on a lock
   *  (a producer's open transaction holds that tenant's fair clock for the queue). */
  deferred: number
  /** Tenants served by this batch. */
  tenants: number
  durationMs: number
}

/** One job pushed for a schedule. */
export interface ScheduleFired {
  tenantId: string
  scheduleId: string
  key: string
  jobId: string
  /** The due time that fired (the oldest one, when several missed ones were collapsed). */
  dueAt: Date
  nextRunAt: Date
  /** True when this job stands for missed due times ('fire_once' after downtime). */
  missed: boolean
}

/** A due schedule whose missed due times were skipped ('skip' policy). */
export interface ScheduleSkipped {
  tenantId: string
  scheduleId: string
  key: string
  dueAt: Date
  nextRunAt: Date
  missedPolicy: MissedPolicy
}

/** A schedule row the runner could not read; it was pushed ahead by invalidRetryMs. */
export interface ScheduleInvalid {
  tenantId: string
  scheduleId: string
  key: string
  error: Error
  retryAt: Date
}

/** Events of a ScheduleRunner, besides 'started', 'stopped' and 'error'. Emitted after the batch commits. */
export type ScheduleRunnerEvents = ServiceEvents & {
  batch: [result: ScheduleBatchResult]
  fired: [fired: ScheduleFired]
  skipped: [skipped: ScheduleSkipped]
  invalid: [invalid: ScheduleInvalid]
}

/**
 * Turns due cron and interval schedules into jobs, exactly once per due time, with any number of
 * runners at once. Connect it as the worker role. Each batch, in one transaction: picks the tenants
 * with due schedules in round-robin order, locks a fair share of each tenant's due schedules
 * (FOR UPDATE SKIP LOCKED), pushes their jobs through push_jobs() and advances next_run_at. The push
 * and the advance commit together, so a runner killed mid-batch loses nothing and fires nothing twice.
 */
export class ScheduleRunner extends LoopService<ScheduleRunnerEvents> {
  /** Options with defaults filled in. */
  readonly options: Readonly<ResolvedScheduleRunnerOptions>
  private readonly target: Connectable
  private conn: Connection | undefined
  /** The last tenant served: the next batch starts after it (round-robin across batches). */
  private cursor: string | null = null
  /** Resolved at the first batch (undefined: nothing recorded). */
  private telemetry: Telemetry | undefined | null = null

  /** Creates a runner; `target` is a worker-role URL or a pg.Pool (left open on stop). */
  static create(target: Connectable, options: ScheduleRunnerOptions = {}): ScheduleRunner {
    return new ScheduleRunner(target, options)
  }

  /** Same as ScheduleRunner.create(). Options are validated here (PgQueueValidationError). */
  constructor(target: Connectable, options: ScheduleRunnerOptions = {}) {
    const resolved = resolveScheduleRunnerOptions(options)
    super({ name: 'schedule-runner', idleMs: resolved.pollMs, logger: resolved.logger, maxBackoffMs: resolved.maxBackoffMs })
    this.options = Object.freeze(resolved)
    this.target = target
    // Validate the target now rather than at the first poll.
    this.connection()
  }

  /** @deprecated Renamed runOnce(). */
  tick(): Promise<ScheduleBatchResult> {
    return this.runOnce()
  }

  /**
   * Runs one batch now and returns what it did. start() calls it in a loop; call it yourself to drive
   * the runner from your own loop or in tests (then close() it when done). Safe alongside start() and
   * other runners.
   */
  async runOnce(): Promise<ScheduleBatchResult> {
    // Durations on the monotonic clock: a wall clock stepped back must not make them negative.
    const started = performance.now()
    const { schema, batchSize, tenantQuantum, lockTimeoutMs, statementTimeoutMs } = this.options
    const now = this.options.clock.now()
    const db = this.connection().db
    const empty: ScheduleBatchResult = { claimed: 0, fired: 0, skipped: 0, invalid: 0, deferred: 0, tenants: 0, durationMs: 0 }
    const dueCount = await scheduleCountDue(db, { schema, now, limit: batchSize + 1 })
    if (dueCount === 0) {
      this.cursor = null
      return { ...empty, durationMs: performance.now() - started }
    }

    // When everything due fits in one batch there is nothing to share out: take it all. Otherwise
    // pick the due tenants round-robin: those after the cursor first, then wrap around to the start.
    let tenantIds: string[] | null = null
    let perTenant = 0
    if (dueCount > batchSize) {
      const maxTenants = Math.max(1, Math.floor(batchSize / tenantQuantum))
      tenantIds = await scheduleDueTenants(db, { schema, now, after: this.cursor, upTo: null, limit: maxTenants })
      if (tenantIds.length < maxTenants && this.cursor !== null) {
        tenantIds.push(...(await scheduleDueTenants(db, { schema, now, after: null, upTo: this.cursor, limit: maxTenants - tenantIds.length })))
      }
      if (tenantIds.length === 0) {
        this.cursor = null
        return { ...empty, durationMs: performance.now() - started }
      }
      this.cursor = tenantIds[tenantIds.length - 1]!
      // An equal share of the batch per due tenant, never below the quantum: with few tenants due, one
      // busy tenant still fills the batch; with many, each takes its quantum and the cursor moves on.
      perTenant = Math.max(tenantQuantum, Math.floor(batchSize / tenantIds.length))
    }

    const fired: ScheduleFired[] = []
    const skipped: ScheduleSkipped[] = []
    const invalid: ScheduleInvalid[] = []
    const tenantsServed = new Set<string>()
    let deferred = 0
    if (this.telemetry === null) this.telemetry = resolveTelemetry(this.options.telemetry, { name: '@pgqueue/schedule-runner' })
    const telemetry = this.telemetry
    // One send span per tenant, ended once the batch has committed (or failed); a tenant whose job the
    // database refused ends its span with that error.
    const traces = new Map<string, PushTrace>()
    const refused = new Map<string, Error>()
    const endTraces = (error?: unknown): void => {
      for (const [tenantId, tr] of traces) tr.end(error ?? refused.get(tenantId))
      traces.clear()
    }
    let claimed: number
    try {
      claimed = await db.transaction().execute(async (trx) => {
        fired.length = skipped.length = invalid.length = 0
        tenantsServed.clear()
        deferred = 0
        await transactionSetTimeouts(trx, { lockTimeoutMs, statementTimeoutMs })
        const rows =
          tenantIds === null
            ? await scheduleClaimAllDue(trx, { schema, now, limit: batchSize })
            : await scheduleClaimDue(trx, { schema, now, tenantIds, perTenant })
        const advances = new Map<string, ScheduleAdvanceInput>()
        let jobs: ScheduleJobInput[] = []
        const rowsByJob = new Map<ScheduleJobInput, ClaimedScheduleRow>()
        for (const row of rows) {
          tenantsServed.add(row.tenant_id)
          const decided = this.decide(row, now)
          advances.set(`${row.tenant_id}\u0000${row.id}`, decided.advance)
          if (decided.invalid) invalid.push(decided.invalid)
          if (decided.skipped) skipped.push(decided.skipped)
          if (decided.job) {
            jobs.push(decided.job)
            fired.push(decided.fired!)
            rowsByJob.set(decided.job, row)
          }
        }
        // A schedule whose push would wait (its tenant holds the queue's fair clock in an open
        // transaction) stays due, unadvanced, for a later batch; the rest of the batch goes ahead.
        const defer = (job: ScheduleJobInput): void => {
          advances.delete(`${job.tenantId}\u0000${job.scheduleId}`)
          fired.splice(fired.findIndex((f) => f.jobId === job.id), 1)
          deferred += 1
        }
        const pairs = new Map<string, { tenantId: string; queue: string }>()
        for (const j of jobs) pairs.set(`${j.tenantId}\u0000${j.queue}`, { tenantId: j.tenantId, queue: j.queue })
        let busyPairs = await queueClockTryLockMany(trx, { schema, pairs: [...pairs.values()] })
        // A clock is mostly busy for milliseconds (another runner's batch, a push committing): look again
        // a few times before deferring. A transaction left open costs a batch this much, never more.
        for (const pause of CLOCK_RETRY_PAUSES_MS) {
          if (busyPairs.length === 0) break
          await sleep(pause)
          busyPairs = await queueClockTryLockMany(trx, { schema, pairs: busyPairs })
        }
        const busy = new Set(busyPairs.map((p) => `${p.tenantId}\u0000${p.queue}`))
        if (busy.size > 0) {
          for (const j of jobs) if (busy.has(`${j.tenantId}\u0000${j.queue}`)) defer(j)
          jobs = jobs.filter((j) => !busy.has(`${j.tenantId}\u0000${j.queue}`))
        }
        if (telemetry !== undefined) this.trace(telemetry, jobs, traces)
        const pushed = await this.pushIsolatingScheduleErrors(trx, jobs)
        for (const job of pushed.waited) defer(job)
        for (const { job, error } of pushed.rejected) {
          // The database refused this schedule's job (a constraint or trigger on jobs, a value too large
          // for an index): defer the schedule like an unreadable row, so it neither blocks its batch nor
          // fires in a loop.
          const row = rowsByJob.get(job)!
          const advance = advances.get(`${row.tenant_id}\u0000${row.id}`)!
          const retryAt = new Date(now.getTime() + this.options.invalidRetryMs)
          advance.nextRunAt = retryAt
          advance.lastRunAt = null
          fired.splice(fired.findIndex((f) => f.jobId === job.id), 1)
          invalid.push({ tenantId: row.tenant_id, scheduleId: row.id, key: row.key, error, retryAt })
          refused.set(job.tenantId, error)
        }
        const expected = jobs.length - pushed.rejected.length - pushed.waited.length
        if (pushed.written !== expected) throw new Error(`push_jobs wrote ${pushed.written} of ${expected} jobs; batch rolled back`)
        const advanced = await scheduleAdvance(trx, { schema, rows: [...advances.values()] })
        if (advanced !== advances.size) throw new Error(`advanced ${advanced} of ${advances.size} claimed schedules; batch rolled back`)
        return rows.length
      })
    } catch (err) {
      endTraces(err)
      throw err
    }
    endTraces()

    const result: ScheduleBatchResult = {
      claimed,
      fired: fired.length,
      skipped: skipped.length,
      invalid: invalid.length,
      deferred,
      tenants: tenantsServed.size,
      durationMs: performance.now() - started,
    }
    for (const i of invalid) {
      this.logger.warn(
        { component: 'schedule-runner', tenantId: i.tenantId, scheduleId: i.scheduleId, key: i.key, err: i.error },
        `schedule-runner: schedule ${i.scheduleId} of tenant ${JSON.stringify(i.tenantId)} cannot be read (${i.error.message}); retrying at ${i.retryAt.toISOString()}`,
      )
    }
    this.emitEach('fired', fired)
    this.emitEach('skipped', skipped)
    this.emitEach('invalid', invalid)
    if (claimed > 0) this.emit('batch', result)
    return result
  }

  /**
   * Starts a send span per tenant of `jobs` into `traces`, and sets each job's traceContext to its
   * tenant's (in place: the batch keys its bookkeeping by these objects).
   */
  private trace(t: Telemetry, jobs: ScheduleJobInput[], traces: Map<string, PushTrace>): void {
    const byTenant = new Map<string, ScheduleJobInput[]>()
    for (const j of jobs) {
      const list = byTenant.get(j.tenantId)
      if (list === undefined) byTenant.set(j.tenantId, [j])
      else list.push(j)
    }
    for (const [tenantId, list] of byTenant) {
      const tr = startPushTrace(t, tenantId, list)
      traces.set(tenantId, tr)
      for (const j of list) j.traceContext = tr.traceContext
    }
  }

  protected override async loopStep(): Promise<boolean> {
    const result = await this.runOnce()
    // Deferred schedules are still due: counting them as progress would poll them in a tight loop
    // for as long as the tenant keeps its transaction open. They wait for the next poll instead.
    return result.claimed > result.deferred
  }

  /** Checks the schema and the login's role before the loop starts (PgQueueSetupError says what to do). */
  protected override async onStart(): Promise<void> {
    await checkInstallation(this.connection().pool, { schema: this.options.schema, component: 'ScheduleRunner', accepted: ['worker', 'owner'] })
  }

  protected override async onStop(): Promise<void> {
    await this.closeConnection()
  }

  protected override async release(): Promise<void> {
    await this.closeConnection()
  }

  /**
   * Pushes the batch's jobs under a savepoint. When the database refuses the batch with an error that
   * belongs to one schedule's job (see isScheduleError()), which would fail every retry of the same
   * batch for every tenant, pushes the jobs one by one, each under its own savepoint: returns the ones
   * refused, with their errors, and the ones that waited too long for a lock (those are deferred, with
   * the rest of their tenant's jobs in this batch). Other errors (connection, serialization) propagate
   * and roll the whole batch back for a retry.
   */
  private async pushIsolatingScheduleErrors(
    trx: Transaction<Database>,
    jobs: ScheduleJobInput[],
  ): Promise<{ written: number; rejected: { job: ScheduleJobInput; error: Error }[]; waited: ScheduleJobInput[] }> {
    const schema = this.options.schema
    if (jobs.length === 0) return { written: 0, rejected: [], waited: [] }
    await sql`savepoint pgqueue_push`.execute(trx)
    try {
      const written = await schedulePushJobs(trx, { schema, jobs })
      await sql`release savepoint pgqueue_push`.execute(trx)
      return { written, rejected: [], waited: [] }
    } catch (err) {
      if (!isScheduleError(err) && !isLockWait(err)) throw err
      await sql`rollback to savepoint pgqueue_push`.execute(trx)
      await sql`release savepoint pgqueue_push`.execute(trx)
    }
    let written = 0
    const rejected: { job: ScheduleJobInput; error: Error }[] = []
    const waited: ScheduleJobInput[] = []
    const waitingTenants = new Set<string>()
    for (const job of jobs) {
      // One lock wait per tenant and batch at most: its other jobs would wait the same way.
      if (waitingTenants.has(job.tenantId)) {
        waited.push(job)
        continue
      }
      await sql`savepoint pgqueue_push_one`.execute(trx)
      try {
        written += await schedulePushJobs(trx, { schema, jobs: [job] })
      } catch (err) {
        if (isLockWait(err)) {
          waitingTenants.add(job.tenantId)
          waited.push(job)
        } else if (isScheduleError(err)) {
          rejected.push({ job, error: err as Error })
        } else {
          throw err
        }
        await sql`rollback to savepoint pgqueue_push_one`.execute(trx)
      }
      await sql`release savepoint pgqueue_push_one`.execute(trx)
    }
    return { written, rejected, waited }
  }

  /** Checks a claimed row and plans it: a job to push (or none) and the row's new timing. */
  private decide(row: ClaimedScheduleRow, now: Date): {
    advance: ScheduleAdvanceInput
    job?: ScheduleJobInput
    fired?: ScheduleFired
    skipped?: ScheduleSkipped
    invalid?: ScheduleInvalid
  } {
    const base = { tenantId: row.tenant_id, scheduleId: row.id, key: row.key }
    let checked
    let plan
    try {
      checked = checkScheduleRow(row)
      plan = planFire(checked, row.next_run_at, now, this.options.missedGraceMs)
      // An every_ms or anchor far out of range gives a time the database cannot store: that would fail
      // the whole batch's advance, for every tenant, on every retry.
      const next = plan.nextRunAt.getTime()
      if (!Number.isFinite(next) || next > MAX_NEXT_RUN_MS) {
        throw new PgQueueValidationError('next_run_at', 'the next due time is out of range (every_ms or anchor_at too large)', plan.nextRunAt)
      }
    } catch (err) {
      // A bad row must not stop the runner or its batch: push it ahead and report it.
      const retryAt = new Date(now.getTime() + this.options.invalidRetryMs)
      const error = err instanceof Error ? err : new Error(String(err))
      return { advance: { tenantId: row.tenant_id, id: row.id, nextRunAt: retryAt, lastRunAt: null }, invalid: { ...base, error, retryAt } }
    }
    if (!plan.fire) {
      return {
        advance: { tenantId: row.tenant_id, id: row.id, nextRunAt: plan.nextRunAt, lastRunAt: null },
        skipped: { ...base, dueAt: row.next_run_at, nextRunAt: plan.nextRunAt, missedPolicy: checked.missedPolicy },
      }
    }
    const jobId = uuidv7()
    return {
      advance: { tenantId: row.tenant_id, id: row.id, nextRunAt: plan.nextRunAt, lastRunAt: now },
      job: {
        tenantId: row.tenant_id,
        id: jobId,
        scheduleId: row.id,
        queue: row.queue,
        type: row.type,
        payload: row.payload,
        payloadType: row.payload_type,
        target: row.target,
        priority: row.priority,
        maxAttempts: checked.retryPolicy?.maxAttempts ?? null,
        retryPolicy: checked.retryPolicy === null ? null : JSON.stringify(checked.retryPolicy),
      },
      fired: { ...base, jobId, dueAt: row.next_run_at, nextRunAt: plan.nextRunAt, missed: plan.missed },
    }
  }

  private emitEach<E extends 'fired' | 'skipped' | 'invalid'>(event: E, items: ScheduleRunnerEvents[E][0][]): void {
    if (items.length === 0 || this.listenerCount(event) === 0) return
    for (const item of items) (this.emit as (e: string, v: unknown) => boolean)(event, item)
  }

  private connection(): Connection {
    this.assertOpen()
    if (!this.conn) {
      this.conn = connect(this.target, { max: this.options.poolSize, applicationName: 'pgqueue-schedule-runner' })
      // pg-pool listens for errors only on idle clients: a connection cut while a client is checked out
      // (database restart, pg_terminate_backend) would emit an 'error' nobody handles and crash the
      // process. The query in flight rejects anyway, and the loop reports and retries it.
      if (!guardedPools.has(this.conn.pool)) {
        guardedPools.add(this.conn.pool)
        this.conn.pool.on('connect', (client) => client.on('error', ignoreClientError))
      }
    }
    return this.conn
  }

  private async closeConnection(): Promise<void> {
    const c = this.conn
    this.conn = undefined
    await c?.close()
  }
}
