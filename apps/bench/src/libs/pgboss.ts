import { PgBoss } from 'pg-boss'
import pg from 'pg'
import type { BenchJob, LibAdapter, Names, WorkerOptions } from '../types.js'

const QUEUE = 'bench'
const BATCH = 500

/**
 * pg-boss 12 in its fastest documented configuration (its docs, "workers"; it needs Node 22.12+,
 * so the bench runs it under Node 24):
 * work() with localConcurrency = the case's concurrency, batchSize 500, burstWhenBatchFull, polling at
 * its minimum (0.5 s); LISTEN/NOTIFY (useListenNotify + queue notify) on for the latency case, where it
 * is what the docs recommend for fast pickup. Each of the local workers runs its batch's jobs one after
 * another, so jobs in flight = localConcurrency.
 * With `groupConcurrency` (the 'pg-boss-groups' variant), every job is sent with its tenant as its
 * group and work() limits the jobs active per group, pg-boss 12's nearest thing to fairness; the batch
 * size drops to 1 so that each fetch can see past a group that is at its limit.
 */
export class PgBossAdapter implements LibAdapter {
  config = ''
  private boss!: PgBoss
  private pool!: pg.Pool
  private s = ''

  constructor(private readonly variant: { groupConcurrency?: number } = {}) {}

  async setup(adminUrl: string, names: Names, opts: { lowLatency?: boolean }): Promise<void> {
    const notify = Boolean(opts.lowLatency)
    const g = this.variant.groupConcurrency
    this.config = g
      ? `pg-boss: send / insert with group = tenant; work(localConcurrency 10, batchSize 1, groupConcurrency ${g}, pollingIntervalSeconds 0.5)`
      : `pg-boss: send / insert; work(localConcurrency 10, batchSize ${BATCH}, burstWhenBatchFull, pollingIntervalSeconds 0.5)${notify ? ', useListenNotify + queue notify' : ''}`
    this.s = pg.escapeIdentifier(names.schema)
    this.boss = new PgBoss({ connectionString: adminUrl, schema: names.schema, useListenNotify: notify, application_name: 'bench-pgboss' })
    this.boss.on('error', (err: Error) => process.stderr.write(`pg-boss error: ${err.message}\n`))
    await this.boss.start()
    await this.boss.createQueue(QUEUE, notify ? { notify: true } : {})
    this.pool = new pg.Pool({ connectionString: adminUrl, max: 1 })
    this.pool.on('error', () => {})
  }

  private group(job: BenchJob): { group?: { id: string } } {
    return this.variant.groupConcurrency ? { group: { id: job.t } } : {}
  }

  async push(job: BenchJob): Promise<void> {
    await this.boss.send(QUEUE, job, this.group(job))
  }

  async pushMany(jobs: BenchJob[]): Promise<void> {
    await this.boss.insert(QUEUE, jobs.map((data) => ({ data, ...this.group(data) })))
  }

  async startWorker(opts: WorkerOptions): Promise<void> {
    await this.boss.work<BenchJob>(
      QUEUE,
      this.variant.groupConcurrency
        ? { localConcurrency: opts.concurrency, batchSize: 1, groupConcurrency: this.variant.groupConcurrency, pollingIntervalSeconds: 0.5 }
        : { localConcurrency: opts.concurrency, batchSize: BATCH, burstWhenBatchFull: true, pollingIntervalSeconds: 0.5 },
      async (jobs) => {
        for (const job of jobs) await opts.handler(job.data)
      },
    )
  }

  async stopWorker(): Promise<void> {
    await this.boss.offWork(QUEUE)
  }

  async remaining(): Promise<number> {
    const { rows } = await this.pool.query<{ n: string }>(
      `select count(*) as n from ${this.s}.job where name = $1 and state in ('created', 'retry', 'active')`,
      [QUEUE],
    )
    return Number(rows[0]!.n)
  }

  async close(): Promise<void> {
    await this.boss?.stop({ graceful: false, close: true, timeout: 5_000 }).catch(() => {})
    await this.pool?.end()
  }
}
