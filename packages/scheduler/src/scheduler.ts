import type pg from 'pg'
import { checkInstallation, childLogger, LoopService, NotificationListener, PgQueueStoppedError, PgQueueValidationError, connect, jobsChannel, listenUrlFor, nodeDelete, nodeHeartbeat, type Connectable, type Connection, type ServiceEvents } from '@pgqueue/core/internal'
import { DueJobPromoter } from './due-job-promoter.js'
import { HeldJobReleaser } from './held-job-releaser.js'
import { LeaseRescuer } from './lease-rescuer.js'
import { resolveSchedulerOptions, type ResolvedSchedulerOptions, type SchedulerOptions } from './options.js'
import { jobNextDueInMs } from './queries/jobs.js'

/** What one round did. */
export interface RoundStats {
  /** Expired leases sent back to wait, attempts left. */
  rescued: number
  /** Expired leases with no attempts left, moved to failed history. */
  failed: number
  /** Expired leases of jobs whose cancel was requested, moved to cancelled history. */
  cancelled: number
  promoted: number
  held: number
  released: number
  /** (tenant, queue) pairs whose due jobs stayed scheduled because another transaction (a producer's
   *  open push) holds their fair clock; they are tried again by a later round. */
  blocked: number
}

/** Events a Scheduler emits. */
export interface SchedulerEvents extends ServiceEvents {
  /** After every round that changed something. */
  round: [stats: RoundStats]
}

/**
 * Makes due work claimable in fair order: rescues expired leases, promotes due scheduled jobs into the
 * fair order (or into held for paused and capped pairs), and releases held jobs as pauses lift and caps
 * make room. Every step takes its rows with SKIP LOCKED or transaction-scoped locks, so any number of
 * Schedulers can run at once with no leader, and a Scheduler that dies mid-round leaves only an
 * uncommitted transaction behind.
 */
export class Scheduler extends LoopService<SchedulerEvents> {
  /** The options in effect, defaults filled in. */
  readonly options: ResolvedSchedulerOptions
  private readonly target: Connectable
  private conn: Connection | undefined
  private listener: NotificationListener | undefined
  private readonly promoter: DueJobPromoter
  private readonly releaser: HeldJobReleaser
  private readonly rescuer: LeaseRescuer
  // Intervals are measured on the monotonic clock (performance.now()): a wall clock stepped back must
  // not stop rescues or heartbeats, nor one stepped forward bunch them.
  private lastNodeBeat = Number.NEGATIVE_INFINITY
  private lastRescueAt = Number.NEGATIVE_INFINITY
  private rescueMore = false
  /** The one pending wake-up (a due job, held jobs to look at, or a notification), and when it fires. */
  private wakeTimer: NodeJS.Timeout | undefined
  private wakeAt = Number.POSITIVE_INFINITY
  /** When the last round started (notifyGapMs counts from it). */
  private lastRoundAt = Number.NEGATIVE_INFINITY

  private constructor(target: Connectable, options: SchedulerOptions) {
    const o = resolveSchedulerOptions(options)
    super({ name: `scheduler ${o.nodeId}`, idleMs: o.pollMs, logger: childLogger(o.logger, { nodeId: o.nodeId }), maxBackoffMs: 5_000 })
    if (typeof target !== 'string' && (typeof target !== 'object' || target === null)) {
      throw new PgQueueValidationError('url', 'must be a connection string or a pg.Pool', target)
    }
    this.options = o
    this.target = target
    const channel = jobsChannel(o.schema)
    const timeouts = { lockTimeoutMs: o.lockTimeoutMs, statementTimeoutMs: o.statementTimeoutMs }
    this.promoter = new DueJobPromoter({ schema: o.schema, batchSize: o.promoteBatchSize, tenantsPerBatch: o.promoteTenantsPerBatch, channel, timeouts })
    this.releaser = new HeldJobReleaser({ schema: o.schema, pairsPerRound: o.releasePairsPerRound, perPair: o.releaseBatchSize, channel, timeouts })
    this.rescuer = new LeaseRescuer({ schema: o.schema, batchSize: o.rescueBatchSize, timeouts })
  }

  /** Validates the options (throwing PgQueueValidationError) and returns a Scheduler that is not started yet. */
  static create(urlOrPool: string | pg.Pool, options: SchedulerOptions = {}): Scheduler {
    return new Scheduler(urlOrPool, options)
  }

  get nodeId(): string {
    return this.options.nodeId
  }

  private pool(): pg.Pool {
    this.assertOpen()
    this.conn ??= connect(this.target, { max: this.options.poolSize, applicationName: 'pgqueue-scheduler' })
    return this.conn.pool
  }

  protected override async onStart(): Promise<void> {
    const o = this.options
    await checkInstallation(this.pool(), { schema: o.schema, component: 'Scheduler', accepted: ['worker', 'owner'] })
    const url = o.listen ? listenUrlFor(this.target, o.listenUrl) : undefined
    if (url) {
      // push_jobs() notifies when due jobs arrive, including jobs parked in held by a pause or cap.
      this.listener = new NotificationListener({ url, channels: [jobsChannel(o.schema)], logger: o.logger, onNotify: () => this.onNotify(), onConnect: () => this.onNotify() })
      this.listener.start()
    }
  }

  /**
   * Every push of due jobs notifies, and workers need that; this Scheduler only has work from it when
   * jobs were parked in held. So a notification starts a round at once only if the last one started
   * notifyGapMs ago, else when that time is up: a steady stream of pushes costs a few rounds a second,
   * not one round (five statements) per push.
   */
  private onNotify(): void {
    const wait = this.lastRoundAt + this.options.notifyGapMs - performance.now()
    // A wake() during a round is kept by LoopService: the next round follows that one at once.
    if (wait <= 0) this.wake()
    else this.wakeIn(wait)
  }

  /** Wakes the loop in `ms`, unless a wake-up is already due sooner. */
  private wakeIn(ms: number): void {
    const at = performance.now() + ms
    if (this.wakeTimer && this.wakeAt <= at) return
    this.clearWake()
    this.wakeAt = at
    this.wakeTimer = setTimeout(() => {
      this.wakeTimer = undefined
      this.wakeAt = Number.POSITIVE_INFINITY
      this.wake()
    }, ms)
    this.wakeTimer.unref?.()
  }

  private clearWake(): void {
    if (this.wakeTimer) clearTimeout(this.wakeTimer)
    this.wakeTimer = undefined
    this.wakeAt = Number.POSITIVE_INFINITY
  }

  protected override async onStop(): Promise<void> {
    this.clearWake()
    await this.listener?.stop()
    this.listener = undefined
    if (this.conn) {
      await nodeDelete(this.conn.pool, { schema: this.options.schema, nodeId: this.options.nodeId }).catch((err) => this.reportError(err))
      await this.conn.close()
      this.conn = undefined
    }
    this.lastNodeBeat = Number.NEGATIVE_INFINITY
    this.lastRescueAt = Number.NEGATIVE_INFINITY
  }

  protected override async loopStep(): Promise<boolean> {
    return (await this.runOnce()).more
  }

  /** @deprecated Renamed runOnce(). */
  round(): Promise<RoundStats & { more: boolean }> {
    return this.runOnce()
  }

  /**
   * One round now: rescue, promote, release; returns the counts, and `more` when a step hit its batch
   * limit (more work is waiting). Usable without start() (tests, cron-style deployments); call close()
   * afterwards then. Outside the loop it always rescues.
   */
  async runOnce(): Promise<RoundStats & { more: boolean }> {
    const o = this.options
    const pool = this.pool()
    const now = performance.now()
    this.lastRoundAt = now
    // This round does what a pending wake-up was for; one set while it runs (a notification) stays.
    this.clearWake()
    if (now - this.lastNodeBeat >= o.heartbeatMs) {
      await nodeHeartbeat(pool, { schema: o.schema, nodeId: o.nodeId, kind: 'scheduler', info: { pid: process.pid } })
      this.lastNodeBeat = now
    }
    // Each step runs on its own: one that fails (a timeout, say) does not keep the others from running
    // for every other tenant; the round then reports the first error and the loop backs off.
    let failure: unknown
    const step = async <T>(fn: () => Promise<T>, none: T): Promise<T> => {
      try {
        return await fn()
      } catch (err) {
        failure ??= err
        return none
      }
    }
    // Rescue first: rescued jobs are due at once, so the promotion below puts them back in line.
    const rescueDue = !this.isRunning || this.rescueMore || now - this.lastRescueAt >= o.rescueIntervalMs
    const none = { rescued: 0, failed: 0, cancelled: 0, more: false }
    const rescue = rescueDue ? await step(() => this.rescuer.run(pool), none) : none
    if (rescueDue) {
      this.lastRescueAt = now
      this.rescueMore = rescue.more
    }
    const promote = await step(() => this.promoter.run(pool), { promoted: 0, held: 0, blocked: 0, more: false })
    const release = await step(() => this.releaser.run(pool), { released: 0, pairs: 0, holding: true, more: false })
    const stats: RoundStats = {
      rescued: rescue.rescued,
      failed: rescue.failed,
      cancelled: rescue.cancelled,
      promoted: promote.promoted,
      held: promote.held,
      released: release.released,
      blocked: promote.blocked,
    }
    if (stats.rescued + stats.failed + stats.cancelled + stats.promoted + stats.held + stats.released > 0) this.untypedEmit('round', stats)
    if (failure !== undefined) throw failure
    const more = rescue.more || promote.more || release.more
    // Held jobs, or due jobs left behind because a clock was busy (usually a push committing within
    // milliseconds), are looked at again after heldPollMs rather than pollMs.
    if (!more && this.isRunning) await this.scheduleWake(pool, release.holding || promote.blocked > 0, release.refillMs)
    return { ...stats, more }
  }

  /** Wakes the loop for the next due job, or soon while jobs are held back (a cap, a busy clock), if that is before pollMs. */
  private async scheduleWake(pool: pg.Pool, holding: boolean, refillMs: number | undefined): Promise<void> {
    const o = this.options
    let wait = holding ? o.heldPollMs : o.pollMs
    // Rate-limited jobs kept back: come back when their buckets hold a batch again (at least 10 ms
    // apart, so a bucket with a high rate costs a bounded number of rounds).
    if (refillMs !== undefined) wait = Math.min(wait, Math.max(10, Math.ceil(refillMs)))
    if (wait > 10) {
      // Measured by the database's clock, which wrote run_at: the host's clock may be off. Jobs already
      // due but left behind (a tenant holds them) are retried by the next poll, not by a spin.
      const next = await jobNextDueInMs(pool, { schema: o.schema })
      if (next !== null) wait = Math.min(wait, Math.max(0, next) + 5)
    }
    // A sooner wake-up set by a notification during this round stays.
    if (wait < o.pollMs) this.wakeIn(wait)
  }

  protected override async release(): Promise<void> {
    const conn = this.conn
    this.conn = undefined
    await conn?.close()
  }
}
