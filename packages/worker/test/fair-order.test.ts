import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import pg from 'pg'
import { createIsolatedDatabase, inTenantTx, pushJobs, waitFor, type IsolatedDatabase } from '@pgqueue/testing'
import { fairWeightDelete, fairWeightList, fairWeightSet, migrate, PgQueueValidationError } from '@pgqueue/core'
import { Worker, type Job } from '@pgqueue/worker'
import { jobClaimManyByPriority, jobQueueHasPriorities } from '../src/queries/jobs.js'

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
    expect(await jobQueueHasPriorities(pool, { schema: t.schema, queue: 'slots' })).toBe(true)
    const rows = await jobClaimManyByPriority(pool, { schema: t.schema, queue: 'slots', owner: 'test:1', leaseMs: 60_000, limit: 4, maxBytes: 1 << 20, types: undefined })
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

  it('weights 3:1 share a busy queue about 75/25', async () => {
    await fairWeightSet(pool, { schema: t.schema, tenantId: 'heavy', weight: 3 })
    await pushJobs(pool, t.schema, 'heavy', 'w31', 400)
    await pushJobs(pool, t.schema, 'light', 'w31', 400)
    const order = await startOrder(200, { queues: ['w31'], concurrency: 4 })
    const heavy = order.slice(0, 200).filter((j) => j.tenantId === 'heavy').length
    expect(heavy).toBeGreaterThanOrEqual(135)
    expect(heavy).toBeLessThanOrEqual(165)
  })

  it('a weight-1 tenant behind a weight-100 tenant is still served every round', async () => {
    await fairWeightSet(pool, { schema: t.schema, tenantId: 'big', queue: 'w100', weight: 100 })
    await pushJobs(pool, t.schema, 'big', 'w100', 400)
    await pushJobs(pool, t.schema, 'small', 'w100', 3)
    const order = await startOrder(250, { queues: ['w100'], concurrency: 1 })
    const small = order.map((j, i) => (j.tenantId === 'small' ? i : -1)).filter((i) => i >= 0)
    // Its first job joins at the head; each next one after about 100 of big's.
    expect(small[0]).toBeLessThan(5)
    expect(small[1]).toBeGreaterThan(70)
    expect(small[1]).toBeLessThan(130)
    expect(small[2]).toBeLessThan(240)
  })

  it('weights are the operator\'s: validated, and out of a tenant\'s reach', async () => {
    for (const weight of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, 1001, 0.0001, '2' as unknown as number]) {
      await expect(fairWeightSet(pool, { schema: t.schema, tenantId: 'v', weight })).rejects.toBeInstanceOf(PgQueueValidationError)
    }
    await expect(fairWeightSet(pool, { schema: t.schema, tenantId: '', weight: 2 })).rejects.toBeInstanceOf(PgQueueValidationError)
    expect(await fairWeightList(pool, { schema: t.schema, tenantId: 'v' })).toEqual([])
    // The database refuses the same values.
    await expect(t.admin.query(`insert into "${t.schema}".fair_weights (tenant_id, weight) values ('v', 'NaN')`)).rejects.toMatchObject({ code: '23514' })
    await expect(t.admin.query(`insert into "${t.schema}".fair_weights (tenant_id, weight) values ('v', 0)`)).rejects.toMatchObject({ code: '23514' })
    const user = new pg.Pool({ connectionString: t.userUrl, max: 1 })
    try {
      await inTenantTx(user, 'v', async (c) => {
        await expect(c.query(`select * from "${t.schema}".fair_weights`)).rejects.toMatchObject({ code: '42501' })
      })
      await inTenantTx(user, 'v', async (c) => {
        await expect(c.query(`insert into "${t.schema}".fair_weights (tenant_id, weight) values ('v', 1000)`)).rejects.toMatchObject({ code: '42501' })
      })
      await inTenantTx(user, 'v', async (c) => {
        await expect(c.query(`select "${t.schema}".fair_clock_stride('v', 'q')`)).rejects.toMatchObject({ code: '42501' })
      })
    } finally {
      await user.end()
    }
    await fairWeightSet(pool, { schema: t.schema, tenantId: 'v', weight: 2 })
    await fairWeightSet(pool, { schema: t.schema, tenantId: 'v', queue: 'q', weight: 0.5 })
    expect(await fairWeightList(pool, { schema: t.schema, tenantId: 'v' })).toEqual([
      { tenantId: 'v', queue: null, weight: 2 },
      { tenantId: 'v', queue: 'q', weight: 0.5 },
    ])
    expect(await fairWeightDelete(pool, { schema: t.schema, tenantId: 'v', queue: 'q' })).toBe(true)
    expect(await fairWeightList(pool, { schema: t.schema, tenantId: 'v' })).toHaveLength(1)
  })

  it('a job back to pending below the claim floor still runs, within about a second (issue 19)', async () => {
    const started = new Map<string, number>()
    const w = Worker.create(t.workerUrl, { nodeId: 'w-floor', schema: t.schema, queues: ['floor'], pollMs: 50, concurrency: 4 }, async (job) => {
      started.set(job.id, performance.now())
    })
    await w.start()
    try {
      // A steady trickle, so the Worker claims from a floor (the lowest vt it claimed 500 ms before).
      for (let i = 0; i < 15; i++) {
        await pushJobs(pool, t.schema, `f${i % 3}`, 'floor', 5)
        await new Promise((r) => setTimeout(r, 60))
      }
      const [late] = await pushJobs(pool, t.schema, 'f0', 'floor', 1, { runAt: new Date(Date.now() + 3_600_000) })
      // As a release does: back to pending with a vt far below everything claimed so far.
      await t.admin.query(`update "${t.schema}".jobs set state = 'pending', vt = 0, run_at = now() where id = $1`, [late])
      const at = performance.now()
      for (let i = 0; i < 10; i++) {
        await pushJobs(pool, t.schema, `f${i % 3}`, 'floor', 5)
        await new Promise((r) => setTimeout(r, 60))
      }
      await waitFor(() => started.has(late!), { timeoutMs: 10_000, message: 'the job below the floor started' })
      expect(started.get(late!)! - at).toBeLessThan(3_000)
    } finally {
      await w.stop()
    }
  })
})
