import { Logger, makeWorkerUtils, run, runMigrations, type Runner, type WorkerUtils } from 'graphile-worker'
import pg from 'pg'
import type { BenchJob, LibAdapter, Names, WorkerOptions } from '../types.js'

const TASK = 'bench'
const LOCAL_QUEUE = 1000

const silent = new Logger(() => () => {})

/**
 * graphile-worker 0.18 in its fastest documented configuration (its docs, "performance#batching";
 * it needs Node 22.18+, so the bench runs it under Node 24): localQueue.size 1000, completeJobBatchDelay 0, failJobBatchDelay 0, maxPoolSize
 * concurrency + 2 as its docs recommend. Its LISTEN/NOTIFY wake-up is always on. addJob / addJobs
 * through WorkerUtils; one task identifier, no queueName (a named queue would run jobs serially).
 */
export class GraphileAdapter implements LibAdapter {
  readonly config = `graphile-worker: addJob / addJobs; run(concurrency 10, maxPoolSize 12, localQueue.size ${LOCAL_QUEUE}, completeJobBatchDelay 0, failJobBatchDelay 0), LISTEN/NOTIFY built in`
  private url = ''
  private schema = ''
  private utils!: WorkerUtils
  private runner: Runner | undefined
  private pool!: pg.Pool

  async setup(adminUrl: string, names: Names): Promise<void> {
    this.url = adminUrl
    this.schema = names.schema
    await runMigrations({ connectionString: adminUrl, schema: names.schema, logger: silent })
    this.utils = await makeWorkerUtils({ connectionString: adminUrl, schema: names.schema, logger: silent })
    this.pool = new pg.Pool({ connectionString: adminUrl, max: 1 })
    this.pool.on('error', () => {})
  }

  async push(job: BenchJob): Promise<void> {
    await this.utils.addJob(TASK, job)
  }

  async pushMany(jobs: BenchJob[]): Promise<void> {
    await this.utils.addJobs(jobs.map((payload) => ({ identifier: TASK, payload })))
  }

  /** addJobs takes any number of jobs in one statement. */
  async seed(jobs: BenchJob[]): Promise<void> {
    await this.pushMany(jobs)
  }

  async startWorker(opts: WorkerOptions): Promise<void> {
    this.runner = await run({
      connectionString: this.url,
      schema: this.schema,
      concurrency: opts.concurrency,
      maxPoolSize: Math.max(10, opts.concurrency + 2),
      noHandleSignals: true,
      logger: silent,
      taskList: { [TASK]: async (payload) => void (await opts.handler(payload as BenchJob)) },
      preset: { worker: { localQueue: { size: LOCAL_QUEUE }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } },
    })
  }

  async stopWorker(): Promise<void> {
    await this.runner?.stop()
    this.runner = undefined
  }

  async remaining(): Promise<number> {
    const { rows } = await this.pool.query<{ n: string }>(`select count(*) as n from ${pg.escapeIdentifier(this.schema)}._private_jobs`)
    return Number(rows[0]!.n)
  }

  async close(): Promise<void> {
    await this.runner?.stop().catch(() => {})
    await this.utils?.release()
    await this.pool?.end()
  }
}
