import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import pg from 'pg'
import { createIsolatedDatabase, pushJobs, waitFor, type IsolatedDatabase } from '@pgqueue/testing'
import { migrate } from '@pgqueue/core'
import { Worker, type Job } from '@pgqueue/worker'
import { jobClaimMany } from '../src/queries/jobs.js'

let t: IsolatedDatabase
let pool: pg.Pool

beforeAll(async () => {
  t = await createIsolatedDatabase('fairorder')
  await migrate(t.adminUrl, t.schemaOptions)
  pool = new pg.Pool({ connectionString: t.workerUrl, max: 4 })
})
afterAll(async () => {
  await pool?.end()
  await t.cleanup()
})

/** Runs a Worker over `queues` (every queue when undefined) until `n` jobs started; returns their start order. */
async function startOrder(n: number, opts: { queues?: string[]; concurrency?: number }): Promise<Job[]> {
  const started: Job[] = []
  const w = Worker.create(t.workerUrl, { nodeId: `w-${Math.random().toString(36).slice(2, 8)}`, schema: t.schema, pollMs: 50, concurrency: opts.concurrency ?? 1, ...(opts.queues ? { queues: opts.queues } : {}) }, async (job) => {
    started.push(job)
  })
  await w.start()
  try {
    await waitFor(() => started.length >= n, { timeoutMs: 30_000, message: `${n} jobs started` })
  } finally {
    await w.stop()
  }
  return started
}

describe('fair order', () => {
  it('priority orders a tenant\'s own jobs, never one tenant ahead of another', async () => {
    await pushJobs(pool, t.schema, 'b', 'prio', 1)
    await pushJobs(pool, t.schema, 'a', 'prio', 30, { priority: 1 })
    const order = await startOrder(31, { queues: ['prio'] })
    const bAt = order.findIndex((j) => j.tenantId === 'b')
    // B's one job takes the first slot of the round; a claim may carry a few of A's before it.
    expect(bAt).toBeGreaterThanOrEqual(0)
    expect(bAt).toBeLessThan(4)
  })

  it('priority still orders jobs inside one tenant', async () => {
    await pushJobs(pool, t.schema, 'solo', 'own', 5, { target: { p: 0 } })
    await pushJobs(pool, t.schema, 'solo', 'own', 2, { priority: 5, target: { p: 5 } })
    await pushJobs(pool, t.schema, 'solo', 'own', 1, { priority: -3, target: { p: -3 } })
    const order = await startOrder(8, { queues: ['own'] })
    expect(order.map((j) => (j.target as { p: number }).p)).toEqual([5, 5, 0, 0, 0, 0, 0, -3])
  })

  it('a claim gives each tenant as many jobs as it has slots, its highest priorities first', async () => {
    // Slots interleave: a1 b1 a2 b2 ... ; A's later jobs have priority 9.
    for (let i = 0; i < 4; i++) {
      await pushJobs(pool, t.schema, 'a', 'slots', 1, { target: { i } })
      await pushJobs(pool, t.schema, 'b', 'slots', 1, { target: { i } })
    }
    await pushJobs(pool, t.schema, 'a', 'slots', 4, { priority: 9, target: { i: 9 } })
    const rows = await jobClaimMany(pool, { schema: t.schema, queue: 'slots', owner: 'test:1', leaseMs: 60_000, limit: 4, maxBytes: 1 << 20, types: undefined })
    const byTenant = (x: string) => rows.filter((r) => r.tenant_id === x)
    expect(byTenant('a')).toHaveLength(2)
    expect(byTenant('b')).toHaveLength(2)
    expect(byTenant('a').every((r) => r.priority === 9)).toBe(true)
    expect(byTenant('b').map((r) => (r.target as { i: number }).i).sort()).toEqual([0, 1])
  })

  it('serving every queue, a tenant\'s share does not grow with its number of queues', async () => {
    await t.admin.query(`delete from "${t.schema}".jobs`)
    for (let i = 0; i < 150; i++) await pushJobs(pool, t.schema, 'many', `m-${String(i).padStart(3, '0')}`, 3)
    await pushJobs(pool, t.schema, 'one', 'm-075x', 5)
    const order = await startOrder(40, { concurrency: 1 })
    // Round-robin over tenants: B's five jobs are among the first dozen starts, not spread over 150 queues.
    const ones = order.map((j, i) => (j.tenantId === 'one' ? i : -1)).filter((i) => i >= 0)
    expect(ones.length).toBe(5)
    expect(ones[4]).toBeLessThan(14)
    // The many-queue tenant's queues take turns.
    const manyQueues = new Set(order.filter((j) => j.tenantId === 'many').slice(0, 10).map((j) => j.queue))
    expect(manyQueues.size).toBeGreaterThan(3)
  })

  it('serving every queue, two tenants share a busy worker about evenly', async () => {
    await t.admin.query(`delete from "${t.schema}".jobs`)
    await pushJobs(pool, t.schema, 'x', 'even-1', 200)
    await pushJobs(pool, t.schema, 'y', 'even-2', 100)
    await pushJobs(pool, t.schema, 'y', 'even-3', 100)
    const order = await startOrder(200, { concurrency: 10 })
    const x = order.slice(0, 200).filter((j) => j.tenantId === 'x').length
    expect(x).toBeGreaterThan(70)
    expect(x).toBeLessThan(130)
  })
})
