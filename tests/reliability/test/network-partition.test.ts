import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import pg from 'pg'
import { counts, createIsolatedDatabase, pushJobs, startPartitionProxy, waitFor, type IsolatedDatabase, type PartitionProxy } from '@pgqueue/testing'
import { migrate } from '@pgqueue/core'
import { Worker } from '@pgqueue/worker'
import { Scheduler } from '@pgqueue/scheduler'

// A silent partition: the proxy stops forwarding without closing anything, so no error reaches the
// Worker unless it gives up on its own (client-side statement deadlines, checks of the LISTEN link).
let t: IsolatedDatabase
let pool: pg.Pool
let proxy: PartitionProxy

beforeAll(async () => {
  t = await createIsolatedDatabase('partition')
  await migrate(t.adminUrl, t.schemaOptions)
  pool = new pg.Pool({ connectionString: t.workerUrl, max: 2 })
  proxy = await startPartitionProxy(t.workerUrl)
})
afterAll(async () => {
  await proxy?.close()
  await pool?.end()
  await t.cleanup()
})

describe('Worker on a silently partitioned network', () => {
  it('reports the partition, keeps its stop timeout, and a later Worker finishes every job', async () => {
    await pushJobs(pool, t.schema, 'acme', 'cut', 40)
    const errors: unknown[] = []
    const opts = { schema: t.schema, queues: ['cut'], concurrency: 4, leaseMs: 1_500, queryTimeoutMs: 1_000, pollMs: 100 }
    const w = Worker.create(proxy.url(t.workerUrl), opts, async () => {
      await new Promise((r) => setTimeout(r, 50))
    })
    w.on('error', (err) => errors.push(err))
    await w.start()
    await waitFor(async () => ((await counts(t.admin, t.schema)).h_completed ?? 0) >= 4)
    const seen = errors.length
    proxy.partition()
    // A statement in flight times out (PgQueueQueryTimeoutError); one that needs a new connection gives
    // up connecting. Either way within queryTimeoutMs, not after minutes of TCP retries.
    await waitFor(() => errors.length > seen, { timeoutMs: 3_000, message: 'no error reported' })
    const started = performance.now()
    await w.stop({ timeoutMs: 1_000 })
    const stopMs = performance.now() - started
    // 1 s for handlers plus at most a 1 s grace to record outcomes (no database to record them in).
    expect(stopMs).toBeLessThan(3_000)
    proxy.heal()

    // Nothing lost: what the cut-off Worker held comes back when its leases expire, and runs.
    const s = Scheduler.create(t.workerUrl, { schema: t.schema, pollMs: 100, rescueIntervalMs: 100 })
    const w2 = Worker.create(t.workerUrl, { ...opts, queryTimeoutMs: undefined }, async () => undefined)
    await s.start()
    await w2.start()
    await waitFor(async () => (await counts(t.admin, t.schema)).h_completed === 40, { timeoutMs: 20_000 })
    await w2.stop()
    await s.stop()
    const c = await counts(t.admin, t.schema)
    expect(c.j_pending ?? 0).toBe(0)
    expect(c.j_running ?? 0).toBe(0)
  })

  it('recovers by itself when the network heals', async () => {
    await pushJobs(pool, t.schema, 'acme', 'heal', 30)
    const before = (await counts(t.admin, t.schema)).h_completed ?? 0
    const errors: unknown[] = []
    const w = Worker.create(proxy.url(t.workerUrl), { schema: t.schema, queues: ['heal'], concurrency: 2, leaseMs: 1_500, queryTimeoutMs: 800, pollMs: 100 }, async () => {
      await new Promise((r) => setTimeout(r, 20))
    })
    w.on('error', (err) => errors.push(err))
    await w.start()
    await waitFor(async () => ((await counts(t.admin, t.schema)).h_completed ?? 0) >= before + 2)
    const seen = errors.length
    proxy.partition()
    await waitFor(() => errors.length > seen, { timeoutMs: 3_000, message: 'no error reported' })
    proxy.heal()
    await waitFor(async () => (await counts(t.admin, t.schema)).h_completed === before + 30, { timeoutMs: 20_000 })
    await w.stop({ timeoutMs: 1_000 })
  })
})
