import { performance } from 'node:perf_hooks'
import pg from 'pg'
import { PgQueueError, cutSocket, endWithin, sleep, type Logger } from '@pgqueue/core/internal'
import { jobRenewLeaseMany, type LeaseState } from './queries/jobs.js'
import type { Run } from './run.js'

export interface LeaseKeeperOptions {
  schema: string
  leaseMs: number
  heartbeatMs: number
  /** Makes the keeper's own connection (not from the worker's pool), giving up connecting after
   *  `connectTimeoutMs`. */
  newClient: (connectTimeoutMs: number) => pg.Client
  /** Borrowed from for a round when the keeper's own connection cannot be made (a connection limit). */
  pool: pg.Pool
  logger: Logger
  /** The runs whose leases to keep (buffered, running and finishing ones). */
  runs: () => Iterable<Run>
  /** A run's row is no longer its own. */
  onLost: (run: Run) => void
  /** Cancellation was requested for a run. */
  onCancelRequested: (run: Run) => void
  onError: (err: unknown) => void
  /** Called after every renewal round (the node heartbeat rides on it). */
  onTick?: () => void
}

/**
 * Keeps the leases of a worker's runs: every heartbeatMs one renewal statement for all of them, on a
 * connection of its own, so it never waits for a pool slot behind the worker's claims and completions.
 * The statement locks rows SKIP LOCKED (see jobRenewLeaseMany), runs inside a transaction with a short
 * lock_timeout and statement_timeout, and is abandoned client-side (the connection dropped and made
 * again) if no answer comes in time, so a stalled network, a table lock or a tenant's row lock costs at
 * most one heartbeat, never every lease of the worker. Each run's `leaseUntil` is moved forward by the
 * renewals that reached its row; the worker uses it to avoid starting runs whose lease may lapse.
 */
export class LeaseKeeper {
  private client: pg.Client | undefined
  private readonly stopper = new AbortController()
  private loop: Promise<void> | undefined
  private tail: Promise<unknown> = Promise.resolve()
  private readonly statementTimeoutMs: number
  private readonly lockTimeoutMs: number
  private readonly connectTimeoutMs: number

  constructor(private readonly o: LeaseKeeperOptions) {
    this.statementTimeoutMs = Math.max(200, Math.min(o.heartbeatMs, 5_000))
    this.lockTimeoutMs = Math.max(50, Math.min(Math.floor(o.heartbeatMs / 2), 1_000))
    this.connectTimeoutMs = Math.max(500, Math.min(o.heartbeatMs, 5_000))
  }

  start(): void {
    this.loop ??= this.run()
  }

  async stop(): Promise<void> {
    this.stopper.abort()
    await this.loop
    await this.tail
    const c = this.client
    this.client = undefined
    if (!c) return
    // A graceful end, unless the connection is dead: then it is cut.
    await endWithin(c, 1_000)
  }

  private async run(): Promise<void> {
    const signal = this.stopper.signal
    while (!signal.aborted) {
      await sleep(this.o.heartbeatMs, signal)
      if (signal.aborted) break
      try {
        await this.renewAll()
      } catch (err) {
        this.o.onError(err)
      }
      this.o.onTick?.()
    }
  }

  /** One renewal round for every run; runs missing from the answer lost their lease. */
  async renewAll(): Promise<void> {
    const runs = [...this.o.runs()]
    if (runs.length === 0) return
    const sentAt = performance.now()
    const states = await this.renew(runs, this.o.leaseMs)
    for (const run of runs) {
      const state = states.get(run.key)
      if (!state) {
        // A run that finished meanwhile may have been recorded (and its row deleted): not a loss.
        if (run.phase === 'running' || run.phase === 'buffered') this.o.onLost(run)
        continue
      }
      if (state.renewed) run.leaseUntil = Math.max(run.leaseUntil, sentAt + this.o.leaseMs)
      if (state.cancelRequested && run.phase === 'running') this.o.onCancelRequested(run)
    }
  }

  /**
   * Makes one run's lease last at least `ms` from now. Resolves true when done, false when the lease is
   * no longer the run's; throws when the row is locked by another transaction right now (retry later).
   */
  async extend(run: Run, ms: number): Promise<boolean> {
    const sentAt = performance.now()
    const state = (await this.renew([run], ms)).get(run.key)
    if (!state) return false
    if (!state.renewed) throw new PgQueueError(`lease of job ${run.job.id} not extended: its row is locked by another transaction; try again`)
    run.leaseUntil = Math.max(run.leaseUntil, sentAt + ms)
    return true
  }

  /** Runs one renewal at a time on the keeper's connection (a heartbeat and ctx.extendLease() calls). */
  private renew(runs: Run[], ms: number): Promise<Map<string, LeaseState>> {
    const p = this.tail.then(() => this.renewNow(runs, ms))
    this.tail = p.catch(() => {})
    return p
  }

  private async renewNow(runs: Run[], ms: number): Promise<Map<string, LeaseState>> {
    // One deadline for connecting, borrowing and the transaction: a silent network cannot hold the
    // keeper (and every extendLease() behind it) for longer.
    const timeoutMs = this.connectTimeoutMs + this.statementTimeoutMs + this.lockTimeoutMs + 1_000
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new PgQueueError(`lease renewal got no answer in ${timeoutMs} ms; reconnecting`)), timeoutMs)
    })
    let client: pg.ClientBase | undefined
    let borrowed: pg.PoolClient | undefined
    const transaction = async () => {
      try {
        client = await this.connection()
      } catch (err) {
        // No connection of its own (the server's connection limit, say): this round borrows one from
        // the pool rather than letting every lease lapse. Rows are still locked SKIP LOCKED.
        this.o.onError(err)
        borrowed = await this.o.pool.connect()
        client = borrowed
      }
      const c = client
      await c.query(`begin; set local lock_timeout = ${this.lockTimeoutMs}; set local statement_timeout = ${this.statementTimeoutMs}`)
      try {
        const states = await jobRenewLeaseMany(c, {
          schema: this.o.schema,
          leaseMs: ms,
          tenantIds: runs.map((r) => r.row.tenant_id),
          ids: runs.map((r) => r.row.id),
          owners: runs.map((r) => r.owner),
        })
        await c.query('commit')
        return states
      } catch (err) {
        await c.query('rollback').catch(() => {})
        throw err
      }
    }
    const attempt = transaction()
    attempt.catch(() => {})
    let broken = false
    try {
      return await Promise.race([attempt, timedOut])
    } catch (err) {
      // An unanswered statement or a broken connection leaves it in an unknown state: drop it.
      broken = !(err instanceof pg.DatabaseError)
      if (broken && !borrowed) {
        // Still connecting (no answer to the handshake) counts too: that connection is cut as well.
        const own = (client as pg.Client | undefined) ?? this.client
        if (own) this.dropConnection(own)
      }
      throw err
    } finally {
      clearTimeout(timer)
      // A pool client borrowed late (after the deadline) is given back when it arrives.
      if (borrowed) borrowed.release(broken ? true : undefined)
      else if (broken) void attempt.then(() => borrowed?.release(true), () => borrowed?.release(true))
    }
  }

  private async connection(): Promise<pg.Client> {
    if (this.client) return this.client
    const client = this.o.newClient(this.connectTimeoutMs)
    client.on('error', (err) => {
      this.o.logger.warn({ err }, `lease connection error: ${err.message}`)
      this.dropConnection(client)
    })
    this.client = client
    try {
      await client.connect()
    } catch (err) {
      this.dropConnection(client)
      throw err
    }
    return client
  }

  private dropConnection(client: pg.Client): void {
    if (this.client === client) this.client = undefined
    cutSocket(client)
    client.end().catch(() => {})
  }
}
