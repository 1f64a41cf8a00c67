import { PgBoss } from 'pg-boss'
import pg from 'pg'
import type { BenchFlowNode, BenchJob, LibAdapter, Names, WorkerOptions } from '../types.js'

const QUEUE = 'bench'
const BATCH = 500

/**
 * pg-boss 12 in its fastest documented configuration (its docs, "workers"; it needs Node 22.12+,
 * so the bench runs it under Node 24):
 * work() with localConcurrency = the case's concurrency, batchSize 500, burstWhenBatchFull, polling at
 * its minimum (0.5 s); LISTEN/NOTIFY (useListenNotify + queue notify) on for the latency case, where it
 * is what the docs recommend for fast pickup. Each of the local workers runs its batch's jobs one after
 * another, so jobs in flight = localConcurrency.
 */
export class PgBossAdapter implements LibAdapter {
  config = ''
  private boss!: PgBoss
  private pool!: pg.Pool
  private s = ''

  async setup(adminUrl: string, names: Names, opts: { lowLatency?: boolean }): Promise<void> {
    const notify = Boolean(opts.lowLatency)
    this.config = `pg-boss: send / insert; work(localConcurrency 10, batchSize ${BATCH}, burstWhenBatchFull, pollingIntervalSeconds 0.5)${notify ? ', useListenNotify + queue notify' : ''}`
    this.s = pg.escapeIdentifier(names.schema)
    this.boss = new PgBoss({ connectionString: adminUrl, schema: names.schema, useListenNotify: notify, application_name: 'bench-pgboss' })
    this.boss.on('error', (err: Error) => process.stderr.write(`pg-boss error: ${err.message}\n`))
    await this.boss.start()
    await this.boss.createQueue(QUEUE, notify ? { notify: true } : {})
    this.pool = new pg.Pool({ connectionString: adminUrl, max: 1 })
    this.pool.on('error', () => {})
  }

  async push(job: BenchJob): Promise<void> {
    await this.boss.send(QUEUE, job)
  }

  async pushMany(jobs: BenchJob[]): Promise<void> {
    await this.boss.insert(QUEUE, jobs.map((data) => ({ data })))
  }

  /** insert() takes any number of jobs in one statement. */
  async seed(jobs: BenchJob[]): Promise<void> {
    await this.pushMany(jobs)
  }

  /** pg-boss 12's flow(): every node in the bench queue; its resolver runs at its default interval. */
  async flow(_tenant: string, nodes: BenchFlowNode[]): Promise<void> {
    await this.boss.flow(nodes.map((n) => ({ ref: n.ref, name: QUEUE, data: n.job, ...(n.dependsOn ? { dependsOn: n.dependsOn } : {}) })))
  }

  async startWorker(opts: WorkerOptions): Promise<void> {
    await this.boss.work<BenchJob>(
      QUEUE,
      { localConcurrency: opts.concurrency, batchSize: BATCH, burstWhenBatchFull: true, pollingIntervalSeconds: 0.5 },
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
