import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { migrate } from '@pgqueue/core'
import { importWorkspace } from '../workspace.js'
import { observeAfter, observeBefore, observeModes } from './pgqueue-observe.js'
import type { BenchFlowNode, BenchJob, LibAdapter, Names, WorkerOptions } from '../types.js'

const QUEUE = 'bench'
/** Pushes in flight at once while seeding (see seed()). */
const SEED_IN_FLIGHT = 4

/** Thrown when a pgqueue package the case needs has not landed yet; the report shows "n/a". */
const PUSH_VIA = 'Queues.withTenant(t).push / pushMany (producer, user role, RLS)'

export class NotAvailableError extends Error {
  readonly notAvailable = true
}

interface TenantQueues {
  push(item: Record<string, unknown>): Promise<unknown>
  pushMany(items: Record<string, unknown>[]): Promise<unknown>
  configureQueue(queue: string, settings: Record<string, unknown>): Promise<unknown>
  flow?(nodes: Record<string, unknown>[]): Promise<unknown>
}
interface QueuesClient {
  withTenant(tenant: string): TenantQueues
  close?(): Promise<void>
}
interface Service {
  start(): Promise<void> | void
  stop(): Promise<void>
  on?(event: string, fn: (...args: unknown[]) => void): unknown
}
type JobLike = { tenantId: string; target?: unknown; payload?: unknown }

function withUser(url: string, user: string, password: string): string {
  const u = new URL(url)
  u.username = user
  u.password = password
  return u.toString()
}

/** Worker options to try without editing code (e.g. '{"batchSize":200}'); printed with the results. */
const extraWorkerOptions = JSON.parse(process.env.PGQUEUE_BENCH_WORKER_OPTIONS || '{}') as Record<string, unknown>

/**
 * PGQUEUE_BENCH_KEEP_COMPLETED=false: every (tenant, queue) drops completed jobs from history
 * (configureQueue(queue, { keepCompleted: false }) before its first push, one more round trip per pair,
 * so meant for the processing cases, whose pushes are not timed). Printed in the configuration line.
 */
const keepCompleted = process.env.PGQUEUE_BENCH_KEEP_COMPLETED !== 'false'
/** Observability around the Worker for overhead runs (see pgqueue-observe.ts); printed with the results. */
const observe = observeModes()

const item = (job: BenchJob): Record<string, unknown> => ({ queue: job.q ?? QUEUE, type: 'noop', target: job, ...(job.p ? { priority: job.p } : {}) })

/**
 * pgqueue as a user would deploy it: migrated by the admin into its own schema with its own group
 * roles, the producer connecting as a LOGIN member of the user role (row-level security on, tenant
 * context per transaction), Worker and Scheduler as a LOGIN member of the worker role. History is
 * written for every finished job (that is what the Worker does). Jobs carry the bench payload as
 * their JSON target.
 */
export class PgqueueAdapter implements LibAdapter {
  config = 'pgqueue'
  private userUrl = ''
  private workerUrl = ''
  private schemaOptions!: { schema: string; workerRole: string; userRole: string }
  private queues: QueuesClient | undefined
  private worker: Service | undefined
  private scheduler: Service | undefined
  private admin!: pg.Pool
  private readonly dropping = new Set<string>()
  private stopObserving: (() => Promise<void>) | undefined

  async setup(adminUrl: string, names: Names): Promise<void> {
    const p = names.rolePrefix
    this.schemaOptions = { schema: names.schema, workerRole: `${p}_worker`, userRole: `${p}_user` }
    const password = randomBytes(8).toString('hex')
    this.admin = new pg.Pool({ connectionString: adminUrl, max: 2 })
    this.admin.on('error', () => {})
    await this.admin.query(`create role "${p}_worker" nologin`)
    await this.admin.query(`create role "${p}_user" nologin`)
    await this.admin.query(`create role "${p}_wl" login password '${password}' in role "${p}_worker"`)
    await this.admin.query(`create role "${p}_ul" login password '${password}' in role "${p}_user"`)
    this.workerUrl = withUser(adminUrl, `${p}_wl`, password)
    this.userUrl = withUser(adminUrl, `${p}_ul`, password)
    const { tenantSecret } = await migrate(adminUrl, this.schemaOptions)

    const producer = await importWorkspace<{ Queues?: { create(url: string, opts: object): QueuesClient } }>('@pgqueue/producer')
    if (!producer?.Queues) throw new NotAvailableError('@pgqueue/producer has not landed yet')
    this.queues = producer.Queues.create(this.userUrl, { schema: this.schemaOptions.schema, tenantSecret })
    this.config = `pgqueue: push via ${PUSH_VIA}`
  }

  /** With PGQUEUE_BENCH_KEEP_COMPLETED=false, makes the jobs' (tenant, queue) pairs drop completed history. */
  private async configure(jobs: BenchJob[]): Promise<void> {
    if (keepCompleted) return
    for (const j of jobs) {
      const queue = j.q ?? QUEUE
      const key = `${j.t}\u0000${queue}`
      if (this.dropping.has(key)) continue
      await this.queues!.withTenant(j.t).configureQueue(queue, { keepCompleted: false })
      this.dropping.add(key)
    }
  }

  async push(job: BenchJob): Promise<void> {
    await this.configure([job])
    await this.queues!.withTenant(job.t).push(item(job))
  }

  async pushMany(jobs: BenchJob[]): Promise<void> {
    // The API is per tenant: one call per tenant present in the array, in order of first appearance.
    const byTenant = new Map<string, BenchJob[]>()
    for (const j of jobs) {
      let list = byTenant.get(j.t)
      if (!list) byTenant.set(j.t, (list = []))
      list.push(j)
    }
    await this.configure(jobs)
    for (const [tenant, list] of byTenant) {
      await this.queues!.withTenant(tenant).pushMany(list.map(item))
    }
  }

  /**
   * Untimed pre-fill: the API is per tenant, so one pushMany per tenant present, SEED_IN_FLIGHT of them
   * at a time (the producer's pool holds 10 connections). Each tenant's jobs keep their order.
   */
  async seed(jobs: BenchJob[]): Promise<void> {
    const byTenant = new Map<string, BenchJob[]>()
    for (const j of jobs) {
      let list = byTenant.get(j.t)
      if (!list) byTenant.set(j.t, (list = []))
      list.push(j)
    }
    await this.configure(jobs)
    const lists = [...byTenant]
    let next = 0
    const lane = async (): Promise<void> => {
      while (next < lists.length) {
        const [tenant, list] = lists[next++]!
        await this.queues!.withTenant(tenant).pushMany(list.map(item))
      }
    }
    await Promise.all(Array.from({ length: SEED_IN_FLIGHT }, lane))
  }

  async startWorker(opts: WorkerOptions): Promise<void> {
    const workerPkg = await importWorkspace<{ Worker?: { create(url: string, o: object, h: (job: JobLike) => Promise<unknown>): Service } }>('@pgqueue/worker')
    const schedulerPkg = await importWorkspace<{ Scheduler?: { create(url: string, o?: object): Service } }>('@pgqueue/scheduler')
    if (!workerPkg?.Worker) throw new NotAvailableError('@pgqueue/worker has not landed yet')
    if (!schedulerPkg?.Scheduler) throw new NotAvailableError('@pgqueue/scheduler has not landed yet')
    observeBefore(observe)
    this.scheduler = schedulerPkg.Scheduler.create(this.workerUrl, { schema: this.schemaOptions.schema, nodeId: 'bench-scheduler' })
    this.scheduler.on?.('error', (err) => process.stderr.write(`pgqueue scheduler error: ${(err as Error)?.message}\n`))
    await this.scheduler.start()
    this.worker = workerPkg.Worker.create(
      this.workerUrl,
      { schema: this.schemaOptions.schema, nodeId: 'bench-worker', ...(opts.everyQueue ? {} : { queues: [QUEUE] }), concurrency: opts.concurrency, ...extraWorkerOptions },
      async (job) => {
        await opts.handler(job.target as BenchJob)
        return undefined
      },
    )
    this.worker.on?.('error', (err) => process.stderr.write(`pgqueue worker error: ${(err as Error)?.message}\n`))
    await this.worker.start()
    this.stopObserving = observeAfter(observe, this.workerUrl, this.schemaOptions.schema, this.worker, this.scheduler)
    const tuned = Object.keys(extraWorkerOptions).length ? `, ${JSON.stringify(extraWorkerOptions)} from PGQUEUE_BENCH_WORKER_OPTIONS` : ', other options at their defaults'
    const observed = observe.length ? `; observed: ${observe.join(', ')} (PGQUEUE_BENCH_OBSERVE)` : ''
    this.config = `pgqueue: push via ${PUSH_VIA}; Worker(concurrency ${opts.concurrency}${tuned}) + Scheduler running, both as a login of the worker role; ${keepCompleted ? 'history written' : 'completed jobs dropped (keepCompleted: false, PGQUEUE_BENCH_KEEP_COMPLETED), failures kept'}${observed}`
  }

  async flow(tenant: string, nodes: BenchFlowNode[]): Promise<void> {
    const q = this.queues!.withTenant(tenant)
    if (!q.flow) throw new NotAvailableError('flows have not landed in @pgqueue/producer')
    await q.flow(nodes.map((n) => ({ ...item(n.job), ref: n.ref, ...(n.dependsOn ? { dependsOn: n.dependsOn } : {}) })))
  }

  async flowReleaseGaps(): Promise<number[]> {
    // For each child: its start minus the finish of its last parent, both as history recorded them
    // (finished_at is the completing statement's now(), started_at the claim's).
    const s = pg.escapeIdentifier(this.schemaOptions.schema)
    const { rows } = await this.admin.query<{ gap: number }>(
      `select extract(epoch from c.started_at - max(p.finished_at)) * 1000 as gap
         from ${s}.flow_edges e
         join ${s}.job_history p on p.tenant_id = e.tenant_id and p.id = e.parent_id
         join ${s}.job_history c on c.tenant_id = e.tenant_id and c.id = e.child_id
        group by c.tenant_id, c.id, c.started_at`,
    )
    return rows.map((r) => Number(r.gap))
  }

  async setWeight(tenant: string, weight: number): Promise<void> {
    const core = (await import('@pgqueue/core')) as { fairWeightSet?: (db: pg.Pool, p: object) => Promise<void> }
    if (!core.fairWeightSet) throw new NotAvailableError('weights have not landed in @pgqueue/core')
    await core.fairWeightSet(this.admin, { schema: this.schemaOptions.schema, tenantId: tenant, weight })
  }

  async setRateLimit(tenant: string, ratePerSec: number, capacity: number): Promise<void> {
    const core = (await import('@pgqueue/core')) as { rateLimitSet?: (db: pg.Pool, p: object) => Promise<void> }
    if (!core.rateLimitSet) throw new NotAvailableError('rate limits have not landed in @pgqueue/core')
    await core.rateLimitSet(this.admin, { schema: this.schemaOptions.schema, tenantId: tenant, queue: QUEUE, capacity, ratePerSec })
  }

  async stopWorker(): Promise<void> {
    await this.stopObserving?.()
    this.stopObserving = undefined
    await this.worker?.stop()
    await this.scheduler?.stop()
    this.worker = undefined
    this.scheduler = undefined
  }

  async remaining(): Promise<number> {
    const { rows } = await this.admin.query<{ n: string }>(`select count(*) as n from ${pg.escapeIdentifier(this.schemaOptions.schema)}.jobs`)
    return Number(rows[0]!.n)
  }

  async close(): Promise<void> {
    await this.stopWorker().catch(() => {})
    await this.queues?.close?.()
    await this.admin?.end()
  }
}
