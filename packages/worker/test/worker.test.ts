import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import pg from 'pg'
import { createIsolatedDatabase, waitFor, type IsolatedDatabase } from '@pgqueue/testing'
import { migrate, PgQueueValidationError } from '@pgqueue/core'
import { Worker, JobAbortedError, type Job } from '@pgqueue/worker'
import { counts, pushJobs } from '@pgqueue/testing'

let t: IsolatedDatabase
let pool: pg.Pool
const q = (s: string) => s.replaceAll('S.', `"${t.schema}".`)

beforeAll(async () => {
  t = await createIsolatedDatabase('worker')
  await migrate(t.adminUrl, t.schemaOptions)
  pool = new pg.Pool({ connectionString: t.workerUrl, max: 2 })
})
afterAll(async () => {
  await pool?.end()
  await t.cleanup()
})

describe('Worker', () => {
  it('validates options at construction', () => {
    expect(() => Worker.create(t.workerUrl, { concurrency: 0 }, async () => {})).toThrow(PgQueueValidationError)
    expect(() => Worker.create(t.workerUrl, { leaseMs: 1000, heartbeatMs: 1000 }, async () => {})).toThrow(/heartbeatMs/)
    expect(() => Worker.create(t.workerUrl, { queues: [] }, async () => {})).toThrow(/queues/)
    expect(() => Worker.create(t.workerUrl, {}, 'nope' as never)).toThrow(/handler/)
    expect(() => Worker.create(t.workerUrl, { claimMaxBytes: 0 }, async () => {})).toThrow(/claimMaxBytes/)
    expect(() => Worker.create(t.workerUrl, { completeMaxBytes: 0 }, async () => {})).toThrow(/completeMaxBytes/)
    expect(() => Worker.create(t.workerUrl, { wakeGapMs: -1 }, async () => {})).toThrow(/wakeGapMs/)
    expect(Worker.create(t.workerUrl, {}, async () => {}).options).toMatchObject({ claimMaxBytes: 32 * 1024 * 1024, completeMaxBytes: 32 * 1024 * 1024, wakeGapMs: 50 })
  })

  it('runs jobs, records results and registers its node', async () => {
    await pushJobs(pool, t.schema, 'acme', 'basic', 50, { target: { n: 1 }, payload: Buffer.from('hi') })
    const seen: Job[] = []
    const w = Worker.create(t.workerUrl, { nodeId: 'w-basic', queues: ['basic'], concurrency: 5, schema: t.schema }, async (job) => {
      seen.push(job)
      return { result: { echo: job.payload?.toString() }, resultType: 'application/json' }
    })
    await w.start()
    await waitFor(async () => (await counts(t.admin, t.schema)).h_completed === 50)
    const node = await t.admin.query(q(`select kind from S.nodes where node_id = 'w-basic'`))
    expect(node.rows).toEqual([{ kind: 'worker' }])
    await w.stop()
    expect((await t.admin.query(q(`select 1 from S.nodes where node_id = 'w-basic'`))).rowCount).toBe(0)
    expect(seen[0]).toMatchObject({ tenantId: 'acme', queue: 'basic', type: 'work', attempt: 1, maxAttempts: 5, target: { n: 1 } })
    expect(seen[0]!.payload?.toString()).toBe('hi')
    const h = await t.admin.query(q(`select result, result_type, worker_id, attempt from S.job_history where queue = 'basic' limit 1`))
    expect(JSON.parse(h.rows[0].result.toString())).toEqual({ echo: 'hi' })
    expect(h.rows[0]).toMatchObject({ result_type: 'application/json', worker_id: 'w-basic', attempt: 1 })
  })

  it('warns when no Scheduler is alive and when two processes share a nodeId', async () => {
    const warnings: string[] = []
    const logger = { debug() {}, info() {}, error() {}, warn: (_fields: object, m: string) => warnings.push(m) }
    const opts = { nodeId: 'w-shared', queues: ['nobody'], schema: t.schema, leaseMs: 900, noSchedulerWarnMs: 400, logger }
    const a = Worker.create(t.workerUrl, opts, async () => undefined)
    const b = Worker.create(t.workerUrl, opts, async () => undefined)
    await a.start()
    await b.start()
    try {
      await waitFor(() => warnings.some((w) => /no Scheduler has ever run .* delayed jobs, retries/.test(w)), { message: 'no-Scheduler warning' })
      await waitFor(() => warnings.some((w) => /another process .* under the same nodeId/.test(w)), { message: 'shared nodeId warning' })
      // At most one warning of a kind per Worker per 10 minutes.
      expect(warnings.filter((w) => /no Scheduler/.test(w)).length).toBeLessThanOrEqual(2)
    } finally {
      await a.stop()
      await b.stop()
    }
  })

  it('with a handler per type, claims only those types and runs each with its own handler', async () => {
    await pushJobs(pool, t.schema, 'acme', 'typed', 3, { type: 'send' })
    await pushJobs(pool, t.schema, 'acme', 'typed', 2, { type: 'build' })
    await pushJobs(pool, t.schema, 'acme', 'typed', 2, { type: 'other-program' })
    const ran: string[] = []
    const w = Worker.create(t.workerUrl, { nodeId: 'w-typed', queues: ['typed'], schema: t.schema, pollMs: 50 }, {
      send: (job) => { ran.push(`send:${job.type}`) },
      build: async (job) => { ran.push(`build:${job.type}`); return { result: { built: true } } },
    })
    expect(w.options.types).toEqual(['send', 'build'])
    await w.start()
    await waitFor(() => ran.length === 5)
    await new Promise((r) => setTimeout(r, 300))
    await w.stop()
    expect(ran.sort()).toEqual(['build:build', 'build:build', 'send:send', 'send:send', 'send:send'])
    // Another program's type stays pending for the workers that can run it.
    const left = await t.admin.query(q(`select type, state from S.jobs where queue = 'typed'`))
    expect(left.rows).toEqual([{ type: 'other-program', state: 'pending' }, { type: 'other-program', state: 'pending' }])
    expect(() => Worker.create(t.workerUrl, { schema: t.schema }, {})).toThrow(PgQueueValidationError)
    expect(() => Worker.create(t.workerUrl, { schema: t.schema }, { send: 1 as never })).toThrow(/handler.send/)
    expect(() => Worker.create(t.workerUrl, { schema: t.schema, types: ['x'] }, { send: () => undefined })).toThrow(/types/)
  })

  it('keeps finding new queues when the wall clock steps back (intervals on a monotonic clock)', async () => {
    const seen: string[] = []
    const w = Worker.create(t.workerUrl, { nodeId: 'w-clock', schema: t.schema, pollMs: 50 }, async (job) => {
      seen.push(job.queue)
    })
    await w.start()
    await pushJobs(pool, t.schema, 'acme', 'clock-before', 1)
    await waitFor(() => seen.includes('clock-before'))
    const realNow = Date.now.bind(Date)
    const stepped = vi.spyOn(Date, 'now').mockImplementation(() => realNow() - 600_000)
    try {
      await pushJobs(pool, t.schema, 'acme', 'clock-after', 1)
      await waitFor(() => seen.includes('clock-after'), { timeoutMs: 5_000, message: 'a queue made after the step back is served' })
    } finally {
      stepped.mockRestore()
      await w.stop()
    }
  })

  it('records a job whose row got new versions while it ran (as lease renewals make)', async () => {
    await pushJobs(pool, t.schema, 'acme', 'moved', 4)
    const w = Worker.create(t.workerUrl, { nodeId: 'w-moved', queues: ['moved'], concurrency: 4, schema: t.schema }, async (job) => {
      if (job.target === null && job.attempt === 1) {
        // Two of the four rows get new versions (like a lease renewal) before the handler returns.
        await t.admin.query(q(`update S.jobs set updated_at = now() where id in (select id from S.jobs where queue = 'moved' order by id limit 2)`))
      }
    })
    await w.start()
    await waitFor(async () => (await t.admin.query(q(`select count(*)::int n from S.job_history where queue = 'moved'`))).rows[0].n === 4)
    await w.stop()
    const live = await t.admin.query(q(`select count(*)::int n from S.jobs where queue = 'moved'`))
    expect(live.rows[0].n).toBe(0)
    const h = await t.admin.query(q(`select count(*)::int n, count(distinct id)::int d from S.job_history where queue = 'moved' and state = 'completed'`))
    expect(h.rows[0]).toEqual({ n: 4, d: 4 })
  })

  it('discovers queues when none are given, and filters by type', async () => {
    await pushJobs(pool, t.schema, 'acme', 'disc-a', 5, { type: 'x' })
    await pushJobs(pool, t.schema, 'acme', 'disc-b', 5, { type: 'y' })
    const types: string[] = []
    const w = Worker.create(t.workerUrl, { types: ['x'], schema: t.schema, queueRefreshMs: 50 }, async (job) => void types.push(job.type))
    await w.start()
    await waitFor(() => types.length === 5)
    await new Promise((r) => setTimeout(r, 200))
    await w.stop()
    expect(types.every((x) => x === 'x')).toBe(true)
    const left = await t.admin.query(q(`select count(*)::int n from S.jobs where queue = 'disc-b' and state = 'pending'`))
    expect(left.rows[0].n).toBe(5)
    await t.admin.query(q(`delete from S.jobs where queue = 'disc-b'`))
  })

  it('survives handlers that throw, return garbage or hang', async () => {
    await pushJobs(pool, t.schema, 'acme', 'bad', 1, { type: 'throw', maxAttempts: 1 })
    await pushJobs(pool, t.schema, 'acme', 'bad', 1, { type: 'garbage', maxAttempts: 1 })
    await pushJobs(pool, t.schema, 'acme', 'bad', 1, { type: 'hang', maxAttempts: 1 })
    await pushJobs(pool, t.schema, 'acme', 'bad', 1, { type: 'big', maxAttempts: 1 })
    await pushJobs(pool, t.schema, 'acme', 'bad', 1, { type: 'sync', maxAttempts: 1 })
    const w = Worker.create(t.workerUrl, { queues: ['bad'], schema: t.schema, handlerTimeoutMs: 300, maxResultBytes: 10 }, ((job: Job) => {
      if (job.type === 'throw') return Promise.reject(Object.assign(new Error('boom'), { code: 'E_BOOM' }))
      if (job.type === 'garbage') { const a: Record<string, unknown> = {}; a.self = a; return a }
      if (job.type === 'hang') return new Promise(() => {})
      if (job.type === 'big') return { result: Buffer.alloc(100) }
      throw 'plain string'
    }) as never)
    await w.start()
    await waitFor(async () => (await counts(t.admin, t.schema)).h_failed === 5)
    await w.stop()
    const { rows } = await t.admin.query(q(`select type, error from S.job_history where queue = 'bad' order by type`))
    const byType = Object.fromEntries(rows.map((r) => [r.type, r.error]))
    expect(byType.throw).toMatchObject({ message: 'boom', code: 'E_BOOM', name: 'Error' })
    expect(byType.throw.stack).toContain('boom')
    expect(byType.garbage.message).toMatch(/JSON/)
    expect(byType.hang.message).toMatch(/timeout/)
    expect(byType.big.message).toMatch(/over the limit/)
    expect(byType.sync.message).toBe('plain string')
  })

  it('stores errors that hold NUL and lone surrogates (jsonb refuses both) instead of retrying them forever', async () => {
    await pushJobs(pool, t.schema, 'acme', 'poison', 20, { maxAttempts: 1 })
    let n = 0
    const w = Worker.create(t.workerUrl, { queues: ['poison'], concurrency: 5, schema: t.schema, completeDelayMs: 20 }, async () => {
      n += 1
      if (n % 2 === 0) throw new Error('bad \u0000 bytes \ud800 here')
      return { result: { fine: true } }
    })
    await w.start()
    await waitFor(async () => (await t.admin.query(q(`select count(*)::int n from S.job_history where queue = 'poison'`))).rows[0].n === 20, { message: 'all 20 in history' })
    await w.stop()
    const failed = await t.admin.query(q(`select error->>'message' as m from S.job_history where queue = 'poison' and state = 'failed'`))
    expect(failed.rows.length).toBe(10)
    expect(failed.rows[0].m).toBe('bad  bytes \ufffd here')
  })

  it('bounds stored errors', async () => {
    await pushJobs(pool, t.schema, 'acme', 'huge-err', 1, { maxAttempts: 1 })
    const w = Worker.create(t.workerUrl, { queues: ['huge-err'], schema: t.schema }, async () => {
      throw new Error('x'.repeat(100_000))
    })
    await w.start()
    await waitFor(async () => (await t.admin.query(q(`select 1 from S.job_history where queue = 'huge-err'`))).rowCount === 1)
    await w.stop()
    const { rows } = await t.admin.query(q(`select length(error::text) as n from S.job_history where queue = 'huge-err'`))
    expect(rows[0].n).toBeLessThan(12_000)
  })

  it('retries with the job policy, then fails into history', async () => {
    await pushJobs(pool, t.schema, 'acme', 'retry', 1, { maxAttempts: 3, retryPolicy: { type: 'constant', delayMs: 300, maxAttempts: 3 } })
    const attempts: number[] = []
    const w = Worker.create(t.workerUrl, { queues: ['retry'], schema: t.schema }, async (job) => {
      attempts.push(job.attempt)
      throw new Error(`fail ${job.attempt}`)
    })
    const failed: { willRetry: boolean; retryAt?: Date }[] = []
    w.on('job:failed', (e) => failed.push(e))
    await w.start()
    await waitFor(() => failed.length === 1)
    const live = await t.admin.query(q(`select state, vt, attempt, last_error, run_at - now() as wait from S.jobs where queue = 'retry'`))
    expect(live.rows[0]).toMatchObject({ state: 'scheduled', vt: null, attempt: 1 })
    expect(live.rows[0].last_error.message).toBe('fail 1')
    expect(failed[0]!.willRetry).toBe(true)
    await w.stop()
  })

  it('stop() releases unstarted jobs at once, aborts handlers after the timeout and resolves', async () => {
    await pushJobs(pool, t.schema, 'acme', 'stop', 20)
    let started = 0
    let aborted = 0
    const w = Worker.create(t.workerUrl, { queues: ['stop'], schema: t.schema, concurrency: 2, batchSize: 10 }, async (_job, ctx) => {
      started += 1
      await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => { aborted += 1; expect(ctx.signal.reason).toBeInstanceOf(JobAbortedError); resolve() }))
      throw ctx.signal.reason
    })
    await w.start()
    await waitFor(() => started === 2)
    const t0 = Date.now()
    await w.stop({ timeoutMs: 300 })
    expect(Date.now() - t0).toBeLessThan(3_000)
    expect(aborted).toBe(2)
    const { rows } = await t.admin.query(q(`select state, attempt, lease_owner from S.jobs where queue = 'stop'`))
    expect(rows).toHaveLength(20)
    expect(rows.every((r) => r.state === 'pending' && r.attempt === 0 && r.lease_owner === null)).toBe(true)
  })

  it('stop() waits for handlers that finish within the timeout', async () => {
    await pushJobs(pool, t.schema, 'acme', 'drain', 3)
    let started = 0
    const w = Worker.create(t.workerUrl, { queues: ['drain'], schema: t.schema, concurrency: 3 }, async () => {
      started += 1
      await new Promise((r) => setTimeout(r, 300))
      return 'done'
    })
    await w.start()
    await waitFor(() => started === 3)
    await w.stop({ timeoutMs: 5_000 })
    const { rows } = await t.admin.query(q(`select count(*)::int n from S.job_history where queue = 'drain' and state = 'completed'`))
    expect(rows[0].n).toBe(3)
  })

  it('renews leases of long jobs and extends them on request', async () => {
    await pushJobs(pool, t.schema, 'acme', 'long', 1)
    let extended = false
    const w = Worker.create(t.workerUrl, { queues: ['long'], schema: t.schema, leaseMs: 1_000, heartbeatMs: 300 }, async (_job, ctx) => {
      await new Promise((r) => setTimeout(r, 2_500))
      await ctx.extendLease(60_000)
      const { rows } = await t.admin.query(q(`select extract(epoch from lease_expires_at - now())::float8 as left from S.jobs where queue = 'long'`))
      extended = rows[0].left > 30
      return null
    })
    await w.start()
    await waitFor(async () => ((await counts(t.admin, t.schema)).h_completed ?? 0) >= 1 && extended, { timeoutMs: 10_000 }).catch(() => {})
    await w.stop()
    expect(extended).toBe(true)
    const { rows } = await t.admin.query(q(`select attempt from S.job_history where queue = 'long'`))
    expect(rows).toEqual([{ attempt: 1 }])
  })

  it('aborts a run whose lease was lost and discards its late result', async () => {
    await pushJobs(pool, t.schema, 'acme', 'lost', 1)
    let reason: unknown
    const w = Worker.create(t.workerUrl, { queues: ['lost'], schema: t.schema, leaseMs: 1_000, heartbeatMs: 200 }, async (_job, ctx) => {
      // Another party (a Scheduler that believed this worker dead) takes the job back.
      await t.admin.query(q(`update S.jobs set state = 'scheduled', lease_owner = null, lease_expires_at = null, run_at = now() + interval '1 hour' where queue = 'lost'`))
      await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve()))
      reason = ctx.signal.reason
      return 'late result'
    })
    const lost: Job[] = []
    w.on('job:lost', (e) => lost.push(e.job))
    await w.start()
    await waitFor(() => lost.length === 1)
    await w.stop()
    expect((reason as JobAbortedError).reason).toBe('lease-lost')
    const { rows } = await t.admin.query(q(`select state from S.jobs where queue = 'lost'`))
    expect(rows).toEqual([{ state: 'scheduled' }])
    expect((await t.admin.query(q(`select 1 from S.job_history where queue = 'lost'`))).rowCount).toBe(0)
  })

  it('frees the slot of a hung handler that never read its signal, and shows the abort when it reads it later', async () => {
    await pushJobs(pool, t.schema, 'acme', 'hung', 2)
    let lateSignal: AbortSignal | undefined
    let release!: () => void
    const hung = new Promise<void>((resolve) => (release = resolve))
    let calls = 0
    const w = Worker.create(t.workerUrl, { queues: ['hung'], schema: t.schema, concurrency: 1, handlerTimeoutMs: 200 }, async (_job, ctx) => {
      if (++calls > 1) return
      await hung // ignores the signal
      lateSignal = ctx.signal
    })
    let failed = 0
    w.on('job:failed', () => void (failed += 1))
    await w.start()
    // concurrency 1: the second job only starts once the hung one's slot is freed by the timeout.
    await waitFor(() => calls >= 2)
    release()
    await waitFor(() => lateSignal !== undefined)
    await w.stop()
    expect(lateSignal!.aborted).toBe(true)
    expect((lateSignal!.reason as JobAbortedError).reason).toBe('timeout')
    expect(failed).toBeGreaterThanOrEqual(1)
  })

  it('aborts a cancelled job and records it as cancelled', async () => {
    await pushJobs(pool, t.schema, 'acme', 'cancel', 1)
    const w = Worker.create(t.workerUrl, { queues: ['cancel'], schema: t.schema, leaseMs: 1_000, heartbeatMs: 100 }, async (_job, ctx) => {
      await t.admin.query(q(`update S.jobs set cancel_requested = true where queue = 'cancel'`))
      await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve()))
      throw ctx.signal.reason
    })
    const cancelled: Job[] = []
    w.on('job:cancelled', (e) => cancelled.push(e.job))
    await w.start()
    await waitFor(() => cancelled.length === 1)
    await w.stop()
    const { rows } = await t.admin.query(q(`select state from S.job_history where queue = 'cancel'`))
    expect(rows).toEqual([{ state: 'cancelled' }])
  })

  it('picks up a job pushed to an idle worker quickly (LISTEN/NOTIFY)', async () => {
    let pickedAt = 0
    const w = Worker.create(t.workerUrl, { queues: ['idle'], schema: t.schema, pollMs: 10_000 }, async () => void (pickedAt = Date.now()))
    await w.start()
    await new Promise((r) => setTimeout(r, 500))
    const t0 = Date.now()
    await pushJobs(pool, t.schema, 'acme', 'idle', 1)
    await waitFor(() => pickedAt > 0, { timeoutMs: 3_000 })
    await w.stop()
    expect(pickedAt - t0).toBeLessThan(1_000)
  })

  it('accepts a pg.Pool', async () => {
    await pushJobs(pool, t.schema, 'acme', 'pool', 3)
    const own = new pg.Pool({ connectionString: t.workerUrl, max: 3 })
    let n = 0
    const w = Worker.create(own, { queues: ['pool'], schema: t.schema }, async () => void (n += 1))
    await w.start()
    await waitFor(() => n === 3)
    await w.stop()
    expect((await own.query('select 1 as x')).rows[0].x).toBe(1) // still open: the caller owns it
    await own.end()
  })
})
