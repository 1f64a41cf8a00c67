import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import pg from 'pg'
import { createIsolatedDatabase, pushJobs, waitFor, type IsolatedDatabase } from '@pgqueue/testing'
import { migrate } from '@pgqueue/core'
import { Worker, type Job } from '@pgqueue/worker'
import { FULL_CLAIM_MIN_MS } from '../src/claim-loop.js'
import { comparePositions, jobClaimMany } from '../src/queries/jobs.js'

// The plain claim resumes from where the worker's last claim began (issue 19): what it must still find.
let t: IsolatedDatabase
let pool: pg.Pool
const q = (s: string) => s.replaceAll('S.', `"${t.schema}".`)

beforeAll(async () => {
  t = await createIsolatedDatabase('claimpos')
  await migrate(t.adminUrl, t.schemaOptions)
  pool = new pg.Pool({ connectionString: t.workerUrl, max: 4 })
})
afterAll(async () => {
  await pool?.end()
  await t.cleanup()
})

const claimArgs = (queue: string, limit: number) => ({ schema: t.schema, queue, owner: 'test/1', leaseMs: 60_000, limit, maxBytes: 1 << 20, types: undefined })

describe('claim position', () => {
  it('a claim from a position takes the fair order from there, (vt, id) ascending', async () => {
    for (const tenant of ['a', 'b', 'c']) await pushJobs(pool, t.schema, tenant, 'pos', 4)
    const { rows: order } = await t.admin.query<{ vt: string; id: string }>(q(`select vt::text, id::text from S.jobs where queue = 'pos' order by vt, id`))
    const from = order[5]!
    const rows = await jobClaimMany(pool, { ...claimArgs('pos', 3), from })
    expect(rows.map((r) => [r.vt, r.id])).toEqual(order.slice(5, 8).map((r) => [r.vt, r.id]))
    // With a type filter the position's parameters come after the types.
    expect(await jobClaimMany(pool, { ...claimArgs('pos', 2), types: ['other'], from })).toEqual([])
    const typed = await jobClaimMany(pool, { ...claimArgs('pos', 1), types: ['work'], from })
    expect(typed.map((r) => r.id)).toEqual([order[8]!.id])
    // Without a position the claim starts at the lowest entry, as before.
    const first = await jobClaimMany(pool, claimArgs('pos', 2))
    expect(first.map((r) => r.id)).toEqual(order.slice(0, 2).map((r) => r.id))
    expect([...first].sort(comparePositions).map((r) => r.id)).toEqual(first.map((r) => r.id))
  })

  it('orders positions as the index does: vt by number, then id', () => {
    const ids = ['018f0000-0000-7000-8000-000000000001', '018f0000-0000-7000-8000-000000000002']
    const xs = [{ vt: '1000', id: ids[1]! }, { vt: '999', id: ids[0]! }, { vt: '1000', id: ids[0]! }, { vt: '10000', id: ids[0]! }]
    expect(xs.sort(comparePositions)).toEqual([{ vt: '999', id: ids[0] }, { vt: '1000', id: ids[0] }, { vt: '1000', id: ids[1] }, { vt: '10000', id: ids[0] }])
  })

  it('a tenant that joins behind a backlog lands at or above the position of the last claim', async () => {
    await pushJobs(pool, t.schema, 'a', 'join', 500)
    const claimed = await jobClaimMany(pool, claimArgs('join', 50))
    const from = { vt: claimed[0]!.vt, id: claimed[0]!.id }
    await pushJobs(pool, t.schema, 'b', 'join', 1)
    // B's first slot is the queue's head, so a claim resumed from the last claim's start takes it next.
    const next = await jobClaimMany(pool, { ...claimArgs('join', 2), from })
    expect(next.map((r) => r.tenant_id)).toContain('b')
  })

  it('a busy worker still takes a job that went back to pending below its position', async () => {
    // A's backlog keeps the worker resuming its claims; then a job appears below them with an old vt,
    // as one released at another worker's shutdown does.
    await pushJobs(pool, t.schema, 'a', 'busy', 3_000)
    const started: { job: Job; at: number }[] = []
    const w = Worker.create(t.workerUrl, { nodeId: 'pos-w', schema: t.schema, queues: ['busy'], concurrency: 2, batchSize: 20, pollMs: 50 }, async (job) => {
      started.push({ job, at: performance.now() })
      await new Promise((r) => setTimeout(r, 2))
    })
    await w.start()
    try {
      await waitFor(() => started.length > 200, { timeoutMs: 20_000, message: '200 jobs started' })
      const { rows: low } = await t.admin.query<{ vt: string }>(q(`select min(vt)::text as vt from S.jobs where queue = 'busy' and state = 'pending'`))
      await t.admin.query(q(`insert into S.jobs (tenant_id, queue, type, state, vt, target) values ('c', 'busy', 'x', 'pending', $1::bigint - 100000, '{"back":true}')`), [low[0]!.vt])
      const backAt = performance.now()
      await waitFor(() => started.some((s) => s.job.tenantId === 'c'), { timeoutMs: 10_000, message: 'the job below the position' })
      const back = started.find((s) => s.job.tenantId === 'c')!
      // Found by the next walk from the lowest entry: every FULL_CLAIM_MIN_MS while walks are cheap.
      expect(back.at - backAt).toBeLessThan(FULL_CLAIM_MIN_MS + 900)
      expect(started.filter((s) => s.job.tenantId === 'a').length).toBeLessThan(3_000)
    } finally {
      await w.stop()
    }
  })
})
