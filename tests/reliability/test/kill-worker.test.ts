/**
 * kill -9 of a worker process while jobs flow (delivery at least once, recorded once): short enough for every run.
 * 2,000 jobs over 3 tenants, two worker processes and one Scheduler; one worker is killed mid-run and
 * replaced. Then: every job in history exactly once with its expected outcome, nothing lost or left.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createIsolatedDatabase, type IsolatedDatabase, waitFor } from '@pgqueue/testing'
import { migrate } from '@pgqueue/core'
import { createProducer, type Producer } from '@pgqueue/producer'
import { Cluster, drain, Ledger, verify } from '../src/cluster.js'
import { reportFigure } from '../src/harness.js'

const TENANTS = ['kill-a', 'kill-b', `kill-'c"\\`]
let t: IsolatedDatabase
let producer: Producer
let cluster: Cluster

beforeAll(async () => {
  t = await createIsolatedDatabase('killw')
  await migrate(t.adminUrl, t.schemaOptions)
  producer = createProducer(t.userUrl, { schema: t.schema, poolSize: 2 })
  cluster = new Cluster({ PGQ_URL: t.workerUrl, PGQ_SCHEMA: t.schema, PGQ_LEASE_MS: '2000', PGQ_WORK_MS: '4', PGQ_CONCURRENCY: '8' })
})

afterAll(async () => {
  await cluster?.stopAll()
  await producer?.close()
  await t?.cleanup()
})

describe('kill -9 of a worker while jobs flow', () => {
  it('loses nothing and records nothing twice', async () => {
    const ledger = new Ledger()
    const clients = TENANTS.map((x) => producer.queues.withTenant(x))
    const scheduler = cluster.spawn('scheduler')
    const w1 = cluster.spawn('worker')
    const w2 = cluster.spawn('worker')
    await Promise.all([scheduler.ready, w1.ready, w2.ready])
    const started = Date.now()
    await ledger.push(clients, 2_000, { chunk: 100, failEvery: 50, failAttempts: 2 })
    // Kill while w1 holds leased jobs, then bring a replacement.
    await waitFor(() => Number(w1.stats.completed ?? 0) > 200, { timeoutMs: 60_000, message: 'worker 1 progress' })
    await cluster.kill9(w1)
    cluster.spawn('worker')
    await drain(t.admin, t.schema, TENANTS, 90_000)
    const v = await verify(t.admin, t.schema, ledger, TENANTS)
    reportFigure('kill-worker (default run)', { ...v, kills: cluster.kills, seconds: (Date.now() - started) / 1000, pushErrors: ledger.pushErrors, workerErrors: cluster.total('errors', 'worker'), unhandled: cluster.total('unhandled') })
    expect(ledger.pushErrors).toBe(0)
    expect(v.acknowledged).toBe(2_000)
    expect(v.lost).toBe(0)
    expect(v.duplicates).toBe(0)
    expect(v.wrongOutcome).toBe(0)
    expect(v.stillLive).toBe(0)
    expect(v.byState).toEqual({ completed: 1960, failed: 40 })
    expect(cluster.total('unhandled')).toBe(0)
  })
})
