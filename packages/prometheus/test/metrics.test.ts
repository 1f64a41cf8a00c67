import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Registry } from 'prom-client'
import { migrate, silentLogger } from '@pgqueue/core'
import { Maintenance } from '@pgqueue/maintenance'
import { createProducer, type Producer } from '@pgqueue/producer'
import { Scheduler } from '@pgqueue/scheduler'
import { createIsolatedDatabase, waitFor, type IsolatedDatabase } from '@pgqueue/testing'
import { Worker } from '@pgqueue/worker'
import { HISTOGRAM_BOUNDS_S, registerPgQueueMetrics, toPrometheusBuckets } from '../src/index.js'

let t: IsolatedDatabase
let producer: Producer

beforeAll(async () => {
  t = await createIsolatedDatabase('prom')
  await migrate(t.adminUrl, t.schemaOptions)
  producer = createProducer(t.userUrl, t.schemaOptions)
})
afterAll(async () => {
  await producer?.close()
  await t?.cleanup()
})

/** The value of one sample line of the exposition text, or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

describe('toPrometheusBuckets', () => {
  it('maps the rollup log buckets onto power-of-two bounds exactly', () => {
    const counts = new Array(108).fill(0)
    counts[0] = 1 // under 1 ms
    counts[4] = 2 // [2^(3/4), 2) ms: the last bucket under the 2 ms bound
    counts[5] = 3 // [2, 2.38) ms
    counts[107] = 1 // over 26 hours
    const b = toPrometheusBuckets(counts)
    expect(HISTOGRAM_BOUNDS_S[0]).toBe(0.001)
    expect(b.cumulative[0]).toBe(1) // le 1 ms: bucket 0 only
    expect(b.cumulative[1]).toBe(3) // le 2 ms: buckets 0-4
    expect(b.cumulative[2]).toBe(6) // le 4 ms
    expect(b.cumulative.at(-1)).toBe(6)
    expect(b.count).toBe(7)
  })
})

describe('registerPgQueueMetrics', () => {
  it('reports live depth by state and the oldest pending age, per queue', async () => {
    const acme = producer.queues.withTenant('acme')
    await acme.pushMany([1, 2, 3].map((n) => ({ queue: 'emails', type: 'send', payload: { n } })))
    await acme.push({ queue: 'emails', type: 'send', delay: 3_600_000 })
    await producer.queues.withTenant('globex').push({ queue: 'emails', type: 'send' })
    // A flow whose child waits for its (delayed) parent: one waiting job in 'flowq'.
    await acme.flow([{ ref: 'p', queue: 'flowq', type: 'send', delay: 3_600_000 }, { ref: 'c', queue: 'flowq', type: 'send', dependsOn: ['p'] }])
    const registry = new Registry()
    const metrics = registerPgQueueMetrics(registry, t.workerUrl, { ...t.schemaOptions, cacheMs: 0 })
    try {
      const text = await registry.metrics()
      expect(sample(text, 'pgqueue_jobs{queue="emails",state="pending"}')).toBe(4)
      expect(sample(text, 'pgqueue_jobs{queue="emails",state="scheduled"}')).toBe(1)
      expect(sample(text, 'pgqueue_jobs{queue="emails",state="running"}')).toBe(0)
      expect(sample(text, 'pgqueue_jobs{queue="emails",state="waiting"}')).toBe(0)
      expect(sample(text, 'pgqueue_jobs{queue="flowq",state="waiting"}')).toBe(1)
      expect(sample(text, 'pgqueue_jobs_retrying{queue="emails"}')).toBe(0)
      expect(sample(text, 'pgqueue_oldest_pending_age_seconds{queue="emails"}')).toBeGreaterThanOrEqual(0)
      expect(text).toContain('# TYPE pgqueue_job_wait_seconds histogram')
      expect(text).not.toContain('tenant=')
    } finally {
      await metrics.close()
    }
    // close() takes the metrics out of the registry.
    expect(await registry.metrics()).not.toContain('pgqueue_jobs')
  })

  it('labels live gauges by tenant only when asked', async () => {
    const registry = new Registry()
    const metrics = registerPgQueueMetrics(registry, t.workerUrl, { ...t.schemaOptions, cacheMs: 0, tenantLabel: true, prefix: 'q_' })
    try {
      const text = await registry.metrics()
      expect(sample(text, 'q_jobs{queue="emails",tenant="acme",state="pending"}')).toBe(3)
      expect(sample(text, 'q_jobs{queue="emails",tenant="globex",state="pending"}')).toBe(1)
    } finally {
      await metrics.close()
    }
  })

  it('counts finished jobs and latency histograms from the rollups, and observed components in this process', async () => {
    const registry = new Registry()
    const metrics = registerPgQueueMetrics(registry, t.workerUrl, { ...t.schemaOptions, cacheMs: 0 })
    // Roll up (once the jobs are done) with a clock three minutes ahead, so this minute's jobs are past the safety lag.
    const ahead = { now: () => new Date(Date.now() + 180_000) }
    const maintenanceOptions = { ...t.schemaOptions, clock: ahead, logger: silentLogger, tasks: { vacuum: false, retention: false, nodes: false, leases: false, liveCounts: false } }
    const worker = Worker.create(t.workerUrl, { ...t.schemaOptions, nodeId: 'prom-w', queues: ['emails', 'later'], pollMs: 50, logger: silentLogger }, {
      send: async (job) => {
        if ((job.data as { fail?: boolean } | null)?.fail) throw new Error('boom')
        return { result: 'ok' }
      },
    })
    const scheduler = Scheduler.create(t.workerUrl, { ...t.schemaOptions, pollMs: 50, logger: silentLogger })
    metrics.observeWorker(worker).observeScheduler(scheduler)
    try {
      await registry.metrics() // the first scrape sets where counting starts
      await producer.queues.withTenant('acme').push({ queue: 'emails', type: 'send', payload: { fail: true }, retryPolicy: { type: 'constant', delayMs: 1, maxAttempts: 2 } })
      await producer.queues.withTenant('acme').push({ queue: 'later', type: 'send', runAt: new Date(Date.now() + 300) })
      await worker.start()
      await scheduler.start()
      await waitFor(async () => (await t.admin.query(`select count(*)::int as n from "${t.schema}".jobs where run_at < now() + interval '10 minutes' and queue <> 'flowq'`)).rows[0].n === 0, { timeoutMs: 15_000, message: 'all jobs finished' })
      await Maintenance.runOnce(t.adminUrl, maintenanceOptions)
      const text = await registry.metrics()
      expect(sample(text, 'pgqueue_jobs_finished_total{queue="emails",state="completed"}')).toBe(4)
      expect(sample(text, 'pgqueue_jobs_finished_total{queue="emails",state="failed"}')).toBe(1)
      expect(sample(text, 'pgqueue_jobs_finished_total{queue="later",state="completed"}')).toBe(1)
      expect(sample(text, 'pgqueue_job_run_seconds_count{queue="emails"}')).toBe(5)
      expect(sample(text, 'pgqueue_job_run_seconds_bucket{queue="emails",le="+Inf"}')).toBe(5)
      expect(sample(text, 'pgqueue_job_wait_seconds_count{queue="later"}')).toBe(1)
      expect(sample(text, 'pgqueue_worker_runs_total{queue="emails",outcome="completed"}')).toBe(4)
      expect(sample(text, 'pgqueue_worker_runs_total{queue="emails",outcome="retried"}')).toBe(1)
      expect(sample(text, 'pgqueue_worker_runs_total{queue="emails",outcome="failed"}')).toBe(1)
      expect(sample(text, 'pgqueue_scheduler_rounds_total')).toBeGreaterThanOrEqual(1)
      expect(sample(text, 'pgqueue_scheduler_jobs_total{action="promoted"}')).toBeGreaterThanOrEqual(2)
      expect(sample(text, 'pgqueue_collector_errors_total')).toBe(0)
      // A second scrape counts nothing twice.
      await Maintenance.runOnce(t.adminUrl, maintenanceOptions)
      expect(sample(await registry.metrics(), 'pgqueue_jobs_finished_total{queue="emails",state="completed"}')).toBe(4)
    } finally {
      await worker.stop()
      await scheduler.stop()
      await metrics.close()
    }
  })

  it('caches between scrapes, and a failing refresh keeps the scrape working', async () => {
    const registry = new Registry()
    const metrics = registerPgQueueMetrics(registry, t.workerUrl, { ...t.schemaOptions, cacheMs: 60_000 })
    const broken = registerPgQueueMetrics(new Registry(), t.workerUrl, { schema: `${t.schema}_missing`, cacheMs: 0 })
    try {
      await producer.queues.withTenant('acme').push({ queue: 'cached', type: 'send' })
      expect(sample(await registry.metrics(), 'pgqueue_jobs{queue="cached",state="pending"}')).toBe(1)
      await producer.queues.withTenant('acme').push({ queue: 'cached', type: 'send' })
      expect(sample(await registry.metrics(), 'pgqueue_jobs{queue="cached",state="pending"}')).toBe(1)

      const brokenRegistry = (broken as unknown as { registry: Registry }).registry
      const text = await brokenRegistry.metrics()
      expect(sample(text, 'pgqueue_collector_errors_total')).toBeGreaterThanOrEqual(1)
    } finally {
      await metrics.close()
      await broken.close()
    }
  })
})
