/**
 * The claim loop: fetches jobs and hands them out (River's producer). One loop per Worker, in one of
 * these modes at a time:
 *
 * - **filling**: the buffer is at or below half a claim and there is room (handler slots, buffer,
 *   byte budget): claim up to `room` jobs. With `queues`, visiting them round-robin from a rotating
 *   start; serving every queue, by tenant (claimAcrossQueues()), so a tenant's share does not grow
 *   with the number of queues it uses.
 * - **full**: the buffer is above half a claim, or there is no room: wait for a wake-up (a run started
 *   or was recorded) or `pollMs`.
 * - **idle**: the last claim came back empty: wait for a notification or `pollMs`; claims woken by
 *   notifications are paced by IdleClaimPacer, so a flood of them costs a bounded number of claims.
 * - **backing off**: a claim failed (database down): wait 100 ms doubling up to 5 s, then fill again.
 * - **stopped**: stop() was called; the loop ends and the buffered runs are handed back for release.
 *
 * Handing out (pump): buffered runs start while handler slots are free, in claim order; a run whose
 * lease may lapse before the next renewal is released unstarted instead.
 */
import { performance } from 'node:perf_hooks'
import type pg from 'pg'
import { decodeBody, sleep } from '@pgqueue/core/internal'
import { ClaimSizer } from './claim-sizer.js'
import type { Job } from './job.js'
import type { LeaseOwners } from './lease-owner.js'
import type { ResolvedWorkerOptions } from './options.js'
import { comparePositions, jobClaimAcrossQueues, jobClaimMany, jobClaimManyByPriority, jobQueueHasPriorities, rowKey, type ClaimedRow, type ClaimPosition } from './queries/jobs.js'
import type { Run } from './run.js'
import { IdleClaimPacer, Wakeup } from './wakeup.js'

/** What the claim loop needs from its Worker. */
export interface ClaimLoopDeps {
  options: ResolvedWorkerOptions
  pool: pg.Pool
  owners: LeaseOwners
  /** Every run whose lease the worker holds, by rowKey(); the loop adds the runs it claims. */
  active: Map<string, Run>
  /** Handlers running now. */
  inFlight: () => number
  /** Outcomes waiting to be recorded. */
  unrecorded: () => number
  /** Starts a buffered run's handler. */
  execute: (run: Run) => void
  /** Gives a run back unstarted. */
  release: (run: Run) => void
  reportError: (err: unknown) => void
}

/** How often the loop asks whether a queue has pending jobs with a priority other than 0. */
const PRIORITY_CHECK_MS = 1_000
/** The plain claim walks a queue from its lowest entry this often, or less often when the walks are slow (see claimPlain()). */
export const FULL_CLAIM_MIN_MS = 100
/** ...but at least this often. */
export const FULL_CLAIM_MAX_MS = 5_000

/** A walk from a queue's lowest entry costs at most 1/WALK_SHARE of the time between walks. */
const WALK_SHARE = 20

/** When a queue's plain claim walks from the queue's lowest entry again. */
interface WalkDue {
  /** The next claim walks from the lowest entry (the periodic walk). */
  fullDue: number
  /** A short resumed claim walks from the lowest entry from then on. */
  shortDue: number
}

/** Where a queue's plain claim resumes, and when it walks from the lowest entry again. */
interface QueuePosition extends WalkDue {
  from: ClaimPosition
}

/** When the next walks are due after one sent at `sent` came back at `back`. */
function walkDue(sent: number, back: number): WalkDue {
  const gap = WALK_SHARE * (back - sent)
  return { fullDue: back + Math.min(FULL_CLAIM_MAX_MS, Math.max(FULL_CLAIM_MIN_MS, gap)), shortDue: back + gap }
}

export class ClaimLoop {
  private readonly buffer: Run[] = []
  /** Payload bytes of the runs in the buffer (see claimMaxBytes). */
  private bufferedBytes = 0
  readonly sizer: ClaimSizer
  /** A buffered run starts only if its lease surely lasts this long: until the next renewal at least. */
  private readonly startMarginMs: number
  private readonly pacer: IdleClaimPacer
  private readonly wakeup = new Wakeup()
  private readonly stopSignal = new AbortController()
  private running = false
  private loop: Promise<void> | undefined
  /** The last claim came back empty: the next one is paced (see wakeGapMs). */
  private idle = false
  /** Nothing was pending at the last claim: only a notification or the poll starts the next one. */
  private exhausted = false
  /** Set when a claim returns to an empty buffer and idle handler slots. */
  private starved = false
  private pumping = false
  private queueCursor = 0
  /** Serving every queue: the last tenant of the previous claim round, and the queue each tenant was
   *  last served from (see jobClaimAcrossQueues()). */
  private tenantCursor = ''
  private readonly lastQueues = new Map<string, string>()
  /** Per queue: whether it has pending jobs with a priority other than 0, and when that was asked. */
  private readonly priorityQueues = new Map<string, { mixed: boolean; at: number }>()
  /** Per queue: where this worker's last plain claim began, and when the next one walks from the lowest entry. */
  private readonly positions = new Map<string, QueuePosition>()

  constructor(private readonly d: ClaimLoopDeps) {
    const o = d.options
    this.sizer = new ClaimSizer(o.concurrency, o.batchSize)
    this.startMarginMs = Math.min(o.heartbeatMs, o.leaseMs / 2)
    this.pacer = new IdleClaimPacer(o.wakeGapMs)
  }

  start(): void {
    this.running = true
    this.loop ??= this.run()
  }

  /** Ends the loop (a claim in flight finishes first) and returns the buffered runs, unstarted. */
  async stop(): Promise<Run[]> {
    this.running = false
    this.stopSignal.abort()
    this.wakeup.wake()
    await this.loop
    this.bufferedBytes = 0
    return this.buffer.splice(0)
  }

  /** A notification: jobs may be pending. */
  notified(): void {
    this.exhausted = false
    this.wakeup.wake()
  }

  /** Takes the buffered runs of one tenant's queue out of the buffer, unstarted (a back-off). */
  takeBuffered(tenantId: string, queue: string): Run[] {
    const taken: Run[] = []
    const keep: Run[] = []
    for (const b of this.buffer) {
      if (b.phase === 'buffered' && b.job.tenantId === tenantId && b.job.queue === queue) {
        this.bufferedBytes -= b.bytes
        taken.push(b)
      } else keep.push(b)
    }
    this.buffer.splice(0, this.buffer.length, ...keep)
    return taken
  }

  /**
   * Outcomes were recorded, which frees room for the next claim; after an empty claim only a
   * notification or the poll interval starts the next one, or an idle worker would claim in vain after
   * every job it finishes.
   */
  recorded(): void {
    if (!this.exhausted) this.wakeup.wake()
  }

  private async run(): Promise<void> {
    const o = this.d.options
    let failures = 0
    while (this.running) {
      const room = this.sizer.room({ inFlight: this.d.inFlight(), buffered: this.buffer.length, unrecorded: this.d.unrecorded(), completeBatchSize: o.completeBatchSize })
      // The byte budget bounds the payloads held in the buffer as well as those of one claim.
      if (this.buffer.length > this.sizer.lowWater || room <= 0 || this.bufferedBytes >= o.claimMaxBytes) {
        await this.wakeup.wait(o.pollMs)
        continue
      }
      if (this.idle) {
        const wait = this.pacer.take()
        if (wait > 0) {
          await sleep(wait, this.stopSignal.signal)
          continue
        }
      }
      let claimed: number
      try {
        this.starved = false
        claimed = await this.claimOnce(Math.min(this.sizer.size, room))
        if (this.starved && claimed > 0) this.sizer.grow()
        if (claimed > 0) this.pacer.credit()
        this.idle = claimed === 0
        failures = 0
      } catch (err) {
        failures += 1
        this.d.reportError(err)
        await this.wakeup.wait(Math.min(5_000, 50 * 2 ** Math.min(failures, 7)))
        continue
      }
      // A short claim may only mean other workers held the rows (SKIP LOCKED); only an empty one
      // means nothing is pending: then sleep until a notification or the poll interval.
      if (claimed === 0) {
        this.exhausted = true
        await this.wakeup.wait(o.pollMs)
      }
    }
  }

  /**
   * Claims up to `want` jobs. With `queues`, visits them round-robin from a rotating start (the
   * operator's list bounds how many shares a tenant can get). Serving every queue, claims by tenant
   * instead (claimAcrossQueues()).
   */
  private async claimOnce(want: number): Promise<number> {
    const o = this.d.options
    if (!o.queues) return this.claimAcrossQueues(want)
    const queues = o.queues
    let got = 0
    const start = this.queueCursor++
    for (let i = 0; i < queues.length && got < want && this.running; i++) {
      const queue = queues[(start + i) % queues.length]!
      const owner = this.d.owners.next()
      const sentAt = performance.now()
      const maxBytes = Math.max(1, o.claimMaxBytes - this.bufferedBytes)
      const args = { schema: o.schema, queue, owner, leaseMs: o.leaseMs, limit: want - got, maxBytes, types: o.types }
      const rows = (await this.usesPriorities(queue)) ? await jobClaimManyByPriority(this.d.pool, args) : await this.claimPlain(args)
      got += this.accept(rows, () => queue, owner, sentAt)
      if (this.bufferedBytes >= o.claimMaxBytes) break
    }
    return got
  }

  /**
   * The plain claim, resumed where this worker's last claim of the queue began (its lowest (vt, id);
   * see ClaimPosition) rather than at the queue's lowest entry, so its cost does not grow with the jobs
   * claimed since the oldest transaction open on the server. New work joins at or above that place:
   * a push's first slot is the queue's head, which no job this worker just left pending lies below,
   * and among equal vt a later push has a later id. What can lie below it: a job released at shutdown
   * (it keeps its vt) and tenants that join the queue right after it (the head is then that job's
   * slot), a push whose transaction stayed open while claims went on, a row another worker's failed
   * claim gave back. So the claim walks from the lowest entry again when a resumed claim comes back
   * short, and every FULL_CLAIM_MIN_MS, or WALK_SHARE times as long as the last such walk took when that
   * is longer (at most FULL_CLAIM_MAX_MS). A short claim walks at most that often too (WALK_SHARE times the last
   * walk, with no minimum: a fraction of a millisecond's walk allows the next one a few milliseconds
   * later): while an old transaction keeps the dead entries a walk steps over from being marked, a
   * queue that the worker keeps empty comes back short at every claim, and walking at each one read
   * every job run since (the long-transaction reliability test). Walks cost about 5 % of the time.
   */
  private async claimPlain(args: Parameters<typeof jobClaimMany>[1]): Promise<ClaimedRow[]> {
    const started = performance.now()
    const at = this.positions.get(args.queue)
    if (!at || started >= at.fullDue) {
      const rows = await jobClaimMany(this.d.pool, args)
      this.keepPosition(args.queue, rows, at?.from, walkDue(started, performance.now()))
      return rows
    }
    let rows = await jobClaimMany(this.d.pool, { ...args, from: at.from })
    let due: WalkDue = { fullDue: at.fullDue, shortDue: at.shortDue }
    if (rows.length < args.limit && this.running && performance.now() >= at.shortDue) {
      // Short: the rest of the queue may lie below. The byte budget also cuts claims short; then this
      // second claim takes what fits of the rest, as the first would have.
      const bytes = rows.reduce((n, r) => n + (r.payload?.length ?? 0), 0)
      if (bytes < args.maxBytes) {
        // Same owner: no job can be in both claims (the first one's rows are running), and the
        // owner only has to tell this run of a job from its other runs.
        const sent = performance.now()
        const more = await jobClaimMany(this.d.pool, { ...args, limit: args.limit - rows.length, maxBytes: args.maxBytes - bytes })
        due = walkDue(sent, performance.now())
        if (more.length > 0) rows = [...rows, ...more].sort(comparePositions)
      }
    }
    this.keepPosition(args.queue, rows, at.from, due)
    return rows
  }

  /** Resumes the queue's next claim at the lowest of `rows`, or where it was when none came back. */
  private keepPosition(queue: string, rows: (ClaimedRow & ClaimPosition)[], was: ClaimPosition | undefined, due: WalkDue): void {
    if (this.positions.size > 10_000) this.positions.clear()
    const from = rows.length > 0 ? { vt: rows[0]!.vt, id: rows[0]!.id } : was
    if (from) this.positions.set(queue, { from, ...due })
    else this.positions.delete(queue)
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
    const mixed = await jobQueueHasPriorities(this.d.pool, { schema: this.d.options.schema, queue })
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
    const o = this.d.options
    for (let round = 0; round < 8 && this.running; round++) {
      const owner = this.d.owners.next()
      const sentAt = performance.now()
      const from = this.tenantCursor
      const r = await jobClaimAcrossQueues(this.d.pool, {
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
    const o = this.d.options
    // Handlers ran dry while the claim was on its way: claims are too small for their pace.
    if (this.buffer.length === 0 && this.d.inFlight() < o.concurrency) this.starved = true
    const claimedAt = performance.now()
    const leaseUntil = sentAt + o.leaseMs
    for (const row of rows) {
      const key = rowKey(row.tenant_id, row.id)
      const bytes = row.payload?.length ?? 0
      const run: Run = { job: toJob(row, queueOf(row)), row, owner, key, phase: 'buffered', startedAt: 0, claimedAt, leaseUntil, bytes, span: undefined }
      this.d.active.set(key, run)
      this.buffer.push(run)
      this.bufferedBytes += bytes
    }
    this.pump()
    return rows.length
  }

  /** Starts buffered runs while slots are free; asks for the next claim when the buffer runs low. */
  pump(): void {
    // A handler that returns at once settles inside this loop and calls pump() again: the loop
    // already goes on, so that inner call returns instead of recursing once per buffered job.
    if (!this.running || this.pumping) return
    this.pumping = true
    try {
      while (this.d.inFlight() < this.d.options.concurrency && this.buffer.length > 0) {
        const run = this.buffer.shift()!
        this.bufferedBytes -= run.bytes
        if (run.phase !== 'buffered') continue
        const now = performance.now()
        this.sizer.started(now - run.claimedAt)
        // Its lease may lapse before the next renewal (an event-loop stall, renewals failing): it may run
        // elsewhere soon, so it goes back unstarted, its attempt given back if the row is still ours.
        if (run.leaseUntil - now < this.startMarginMs) {
          this.d.release(run)
          continue
        }
        this.d.execute(run)
      }
    } finally {
      this.pumping = false
    }
    if (!this.exhausted && this.buffer.length <= this.sizer.lowWater) this.wakeup.wake()
  }
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
    flowId: r.flow_id,
  }
}
