import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import pg from 'pg'
import { createIsolatedDatabase, pushJobs, waitFor, type IsolatedDatabase } from '@pgqueue/testing'
import { migrate, PgQueueValidationError } from '@pgqueue/core'
import { JobBackOffError, Worker, type Job } from '@pgqueue/worker'
import { Scheduler } from '@pgqueue/scheduler'

// Back-off from a handler (issue 18), across two Workers and a Scheduler.
let t: IsolatedDatabase
let pool: pg.Pool

beforeAll(async () => {
  t = await createIsolatedDatabase('backoff')
  await migrate(t.adminUrl, t.schemaOptions)
  pool = new pg.Pool({ connectionString: t.workerUrl, max: 2 })
})
afterAll(async () => {
  await pool?.end()
  await t.cleanup()
})

describe('back-off', () => {
  it('a handler that backs off makes its tenant\'s queue wait on every worker, without spending an attempt', async () => {
    await pushJobs(pool, t.schema, 'bo', 'boq', 4)
    await pushJobs(pool, t.schema, 'ok', 'boq', 20)
    const scheduler = Scheduler.create(t.workerUrl, { schema: t.schema, heldPollMs: 50 })
    await scheduler.start()
    let backedOffAt = 0
    const starts: { tenant: string; at: number; attempt: number }[] = []
    const handler = async (job: Job, ctx: { backOff(ms: number): never }) => {
      starts.push({ tenant: job.tenantId, at: performance.now(), attempt: job.attempt })
      if (job.tenantId === 'bo' && backedOffAt === 0) {
        backedOffAt = performance.now()
        ctx.backOff(1_500)
      }
      await new Promise((r) => setTimeout(r, 5))
    }
    const w1 = Worker.create(t.workerUrl, { nodeId: 'w-bo-1', schema: t.schema, queues: ['boq'], concurrency: 1, pollMs: 50 }, handler)
    const w2 = Worker.create(t.workerUrl, { nodeId: 'w-bo-2', schema: t.schema, queues: ['boq'], concurrency: 1, pollMs: 50 }, handler)
    await w1.start()
    await w2.start()
    try {
      await waitFor(() => starts.filter((s) => s.tenant === 'bo').length >= 5, { timeoutMs: 20_000, message: 'bo ran again' })
    } finally {
      await w1.stop()
      await w2.stop()
      await scheduler.stop()
    }
    const ok = starts.filter((s) => s.tenant === 'ok')
    const boAfter = starts.filter((s) => s.tenant === 'bo' && s.at > backedOffAt)
    // The other tenant ran on meanwhile; the backed-off tenant's jobs (a claim may have held one or two
    // of them already) started no sooner than the back-off allowed, beyond those.
    expect(ok.length).toBe(20)
    expect(ok[ok.length - 1]!.at - backedOffAt).toBeLessThan(1_400)
    const late = boAfter.filter((s) => s.at - backedOffAt >= 1_450)
    expect(late.length).toBeGreaterThanOrEqual(boAfter.length - 2)
    expect(late.length).toBeGreaterThanOrEqual(2)
    // The job that backed off ran again as attempt 1.
    expect(boAfter.every((s) => s.attempt === 1)).toBe(true)
    expect(() => new JobBackOffError(0)).toThrow(PgQueueValidationError)
    expect(() => new JobBackOffError(Number.NaN)).toThrow(PgQueueValidationError)
    expect(() => new JobBackOffError(86_400_001)).toThrow(PgQueueValidationError)
  })
})
