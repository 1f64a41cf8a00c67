/**
 * Worker faults of the reliability issue (wedges, wrong results, duplicate runs) and the Worker's side
 * of tenant containment, each with what a user can observe: history rows, live rows, events.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createServer, type AddressInfo, type Socket } from 'node:net'
import pg from 'pg'
import { createIsolatedDatabase, pushJobs, waitFor, type IsolatedDatabase } from '@pgqueue/testing'
import { jobsChannel, migrate, PgQueueStoppedError, uuidv7 } from '@pgqueue/core/internal'
import { Worker, type Job } from '@pgqueue/worker'
import { Scheduler } from '@pgqueue/scheduler'
import { inSchema, rawPush, reportFigure, sleep } from '../src/harness.js'

let t: IsolatedDatabase
let q: (text: string) => string
let pool: pg.Pool

beforeAll(async () => {
  t = await createIsolatedDatabase('wfaults')
  q = inSchema(t.schema)
  await migrate(t.adminUrl, t.schemaOptions)
  pool = new pg.Pool({ connectionString: t.workerUrl, max: 2 })
})
afterAll(async () => {
  await pool?.end()
  await t.cleanup()
})

const DAY = 24 * 3600_000

/** A worker-role pool that counts the statements matching `pattern` (the Worker accepts a pg.Pool). */
function countingPool(pattern: RegExp, onQuery?: (text: string, values: unknown[] | undefined) => void): { pool: pg.Pool; count: () => number } {
  const p = new pg.Pool({ connectionString: t.workerUrl, max: 4 })
  let n = 0
  const query = p.query.bind(p) as (...a: unknown[]) => Promise<unknown>
  ;(p as unknown as { query: unknown }).query = (...args: unknown[]) => {
    const text = typeof args[0] === 'string' ? args[0] : ''
    if (pattern.test(text)) n += 1
    onQuery?.(text, args[1] as unknown[] | undefined)
    return query(...args)
  }
  return { pool: p, count: () => n }
}

describe('worker faults', () => {
  it('a retry delay over 2^31 ms is stored, and the rest of the batch with it', async () => {
    const queue = 'long-delay'
    await pushJobs(pool, t.schema, 'acme', queue, 1, { type: 'poison', maxAttempts: 3, retryPolicy: { type: 'constant', delayMs: 30 * DAY, maxAttempts: 3 } })
    await pushJobs(pool, t.schema, 'acme', queue, 50, { type: 'fine' })
    const errors: Error[] = []
    const w = Worker.create(t.workerUrl, { schema: t.schema, queues: [queue], concurrency: 10, completeDelayMs: 20 }, async (job) => {
      if (job.type === 'poison') throw new Error('needs a month')
      return 'ok'
    })
    w.on('error', (e) => errors.push(e))
    await w.start()
    await waitFor(async () => (await t.admin.query(q(`select count(*)::int n from S.job_history where queue = $1`), [queue])).rows[0].n === 50, { message: '50 fine jobs recorded' })
    await waitFor(async () => (await t.admin.query(q(`select 1 from S.jobs where queue = $1 and state = 'scheduled'`), [queue])).rowCount === 1, { message: 'poison job scheduled' })
    await w.stop()
    const { rows } = await t.admin.query(q(`select state, attempt, extract(epoch from run_at - now()) / 86400 as days, last_error->>'message' as m from S.jobs where queue = $1`), [queue])
    expect(rows).toHaveLength(1)
    expect(rows[0]).toMatchObject({ state: 'scheduled', attempt: 1, m: 'needs a month' })
    expect(Number(rows[0].days)).toBeGreaterThan(29.9)
    expect(errors).toEqual([])
    reportFigure('worker: 30-day retry delay', { recordedOthers: 50, errors: errors.length })
  })

  it('an outcome the database refuses is isolated, then recorded as failed; the others are recorded', async () => {
    const queue = 'refused'
    // A constraint that refuses one result only (a stand-in for any value PostgreSQL will not store).
    await t.admin.query(q(`alter table S.job_history add constraint refuse_poison check (result is null or result <> '"poison"'::bytea)`))
    try {
      await pushJobs(pool, t.schema, 'acme', queue, 1, { type: 'poison' })
      await pushJobs(pool, t.schema, 'acme', queue, 60, { type: 'fine' })
      const errors: Error[] = []
      const failed: { job: Job; message: string }[] = []
      const w = Worker.create(t.workerUrl, { schema: t.schema, queues: [queue], concurrency: 20, completeDelayMs: 30 }, async (job) => (job.type === 'poison' ? 'poison' : 'fine'))
      w.on('error', (e) => errors.push(e))
      w.on('job:failed', (e) => failed.push({ job: e.job, message: e.error.message }))
      await w.start()
      const t0 = Date.now()
      await waitFor(async () => (await t.admin.query(q(`select count(*)::int n from S.job_history where queue = $1`), [queue])).rows[0].n === 61, { message: 'all 61 in history', timeoutMs: 20_000 })
      const took = Date.now() - t0
      await w.stop()
      const { rows } = await t.admin.query(q(`select type, state, result, error->>'message' as m from S.job_history where queue = $1 and type = 'poison'`), [queue])
      expect(rows).toEqual([{ type: 'poison', state: 'failed', result: null, m: expect.stringMatching(/^outcome could not be stored: .*refuse_poison/) }])
      const fine = await t.admin.query(q(`select count(*)::int n from S.job_history where queue = $1 and type = 'fine' and state = 'completed' and result = '"fine"'::bytea`), [queue])
      expect(fine.rows[0].n).toBe(60)
      expect(failed.map((f) => f.job.type)).toEqual(['poison'])
      expect(failed[0]!.message).toMatch(/outcome could not be stored/)
      // Bounded: one error per failed statement while the poison was isolated and retried with backoff.
      expect(errors.length).toBeLessThan(15)
      reportFigure('worker: refused outcome', { errors: errors.length, msToRecordAll: took })
    } finally {
      await t.admin.query(q(`alter table S.job_history drop constraint refuse_poison`))
    }
  })

  it('a database refusing every outcome for a while costs few statements and destroys no result', async () => {
    const queue = 'refuse-all'
    await pushJobs(pool, t.schema, 'acme', queue, 20)
    // Stands in for a transient data-class refusal of every insert (today's partition detached, say).
    await t.admin.query(q(`alter table S.job_history add constraint refuse_all check (queue <> 'refuse-all') not valid`))
    const errors: Error[] = []
    const w = Worker.create(t.workerUrl, { schema: t.schema, queues: [queue], concurrency: 20, completeDelayMs: 30 }, async () => 'kept')
    w.on('error', (e) => errors.push(e))
    await w.start()
    await waitFor(() => errors.length > 0)
    await sleep(2_500)
    const during = errors.length
    await t.admin.query(q(`alter table S.job_history drop constraint refuse_all`))
    await waitFor(async () => (await t.admin.query(q(`select count(*)::int n from S.job_history where queue = $1`), [queue])).rows[0].n === 20, { timeoutMs: 15_000 })
    await w.stop()
    const { rows } = await t.admin.query(q(`select count(*)::int n from S.job_history where queue = $1 and state = 'completed' and result = '"kept"'::bytea`), [queue])
    expect(rows[0].n).toBe(20)
    expect(during).toBeLessThan(30)
    reportFigure('worker: every outcome refused for 2.5 s', { failedStatements: during, resultsKept: rows[0].n })
  })

  it('an error without SQLSTATE (RangeError building the statement) is not retried forever', async () => {
    const queue = 'range-error'
    await pushJobs(pool, t.schema, 'acme', queue, 1, { type: 'poison' })
    await pushJobs(pool, t.schema, 'acme', queue, 20, { type: 'fine' })
    // The completion statement throws a RangeError whenever it carries the poison result, as pg did for
    // a batch of results too large for one JavaScript string.
    const { pool: wpool } = countingPool(/^$/, (text, values) => {
      if (text.includes('delete from') && Array.isArray(values?.[5]) && (values[5] as unknown[]).some((b) => Buffer.isBuffer(b) && b.toString() === '"poison"')) {
        throw new RangeError('Invalid string length')
      }
    })
    const errors: Error[] = []
    const w = Worker.create(wpool, { schema: t.schema, queues: [queue], concurrency: 21, completeDelayMs: 30 }, async (job) => (job.type === 'poison' ? 'poison' : 'fine'))
    w.on('error', (e) => errors.push(e))
    await w.start()
    await waitFor(async () => (await t.admin.query(q(`select count(*)::int n from S.job_history where queue = $1`), [queue])).rows[0].n === 21, { message: 'all 21 in history', timeoutMs: 20_000 })
    await w.stop()
    await wpool.end()
    const { rows } = await t.admin.query(q(`select state, error->>'message' as m from S.job_history where queue = $1 and type = 'poison'`), [queue])
    expect(rows).toEqual([{ state: 'failed', m: 'outcome could not be stored: Invalid string length' }])
    expect(errors.length).toBeLessThan(15)
  })

  it('large results are recorded in statements within the byte budget', async () => {
    const queue = 'big-results'
    await pushJobs(pool, t.schema, 'acme', queue, 30)
    const sizes: number[] = []
    const { pool: wpool } = countingPool(/^$/, (text, values) => {
      if (text.includes('delete from') && Array.isArray(values?.[5])) sizes.push((values[5] as (Buffer | null)[]).reduce((s, b) => s + (b?.length ?? 0), 0))
    })
    const w = Worker.create(wpool, { schema: t.schema, queues: [queue], concurrency: 30, completeDelayMs: 50, completeMaxBytes: 1_000_000 }, async () => ({ result: Buffer.alloc(300_000, 1) }))
    await w.start()
    await waitFor(async () => (await t.admin.query(q(`select count(*)::int n from S.job_history where queue = $1 and octet_length(result) = 300000`), [queue])).rows[0].n === 30)
    await w.stop()
    await wpool.end()
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(30 * 300_000)
    // Hex doubles each byte: at most one 300 kB result per 600 kB of budget, one outcome at least.
    expect(Math.max(...sizes)).toBeLessThanOrEqual(300_000)
  })

  it('a claim stops at its byte budget (payload bytes), one job at least', async () => {
    const queue = 'big-payloads'
    await pushJobs(pool, t.schema, 'acme', queue, 12, { payload: Buffer.alloc(400_000, 7) })
    const claimed: number[] = []
    const { pool: wpool } = countingPool(/^$/)
    const query = wpool.query.bind(wpool) as (...a: unknown[]) => Promise<{ rows: unknown[] }>
    ;(wpool as unknown as { query: unknown }).query = async (...args: unknown[]) => {
      const r = await query(...args)
      if (typeof args[0] === 'string' && args[0].includes("set state = 'running'")) claimed.push(r.rows.length)
      return r
    }
    const w = Worker.create(wpool, { schema: t.schema, queues: [queue], concurrency: 1, batchSize: 100, claimMaxBytes: 1_000_000 }, async () => {
      await sleep(20)
    })
    await w.start()
    await waitFor(async () => (await t.admin.query(q(`select count(*)::int n from S.job_history where queue = $1`), [queue])).rows[0].n === 12)
    await w.stop()
    await wpool.end()
    const nonEmpty = claimed.filter((n) => n > 0)
    expect(nonEmpty.reduce((a, b) => a + b, 0)).toBe(12)
    // 400 kB each: the rows before the last one stay under 1 MB, so three per claim at most.
    expect(Math.max(...nonEmpty)).toBeLessThanOrEqual(3)
    // A single job larger than the budget is still claimed.
    await pushJobs(pool, t.schema, 'acme', queue, 1, { payload: Buffer.alloc(2_000_000, 7) })
    const w2 = Worker.create(t.workerUrl, { schema: t.schema, queues: [queue], claimMaxBytes: 1_000_000 }, async () => {})
    await w2.start()
    await waitFor(async () => (await t.admin.query(q(`select count(*)::int n from S.job_history where queue = $1`), [queue])).rows[0].n === 13)
    await w2.stop()
  })

  it('a late result of a run that lost its lease is not recorded for the job that replaced it by key', async () => {
    const queue = 'replaced'
    const [pushed] = await rawPush(pool, t.schema, 'acme', [{ queue, key: 'k', payload: Buffer.from('v1'), maxAttempts: 3 }])
    let releaseV1!: () => void
    const v1Gate = new Promise<void>((r) => (releaseV1 = r))
    let v1Started = false
    let v1Returned = false
    const lost: Job[] = []
    const w = Worker.create(t.workerUrl, { schema: t.schema, queues: [queue], concurrency: 2, pollMs: 50, leaseMs: 60_000 }, async (job) => {
      if (job.payload?.toString() === 'v1') {
        v1Started = true
        await v1Gate
        v1Returned = true
        return `processed v1`
      }
      // The v2 run: let v1's late result arrive first, as in the issue, then fail.
      releaseV1()
      await waitFor(() => v1Returned)
      await sleep(100)
      throw new Error('v2 failed')
    })
    w.on('job:lost', (e) => lost.push(e.job))
    await w.start()
    await waitFor(() => v1Started)
    // A rescuer takes the job back (lease expired), the producer replaces it by key, and it is due again:
    // its attempt is back to 0, so this same worker's next claim gives it attempt 1 once more.
    await t.admin.query(q(`update S.jobs set state = 'scheduled', lease_owner = null, lease_expires_at = null, run_at = now() where id = $1`), [pushed!.id])
    const [replaced] = await rawPush(pool, t.schema, 'acme', [{ queue, key: 'k', payload: Buffer.from('v2'), maxAttempts: 3 }])
    expect(replaced).toMatchObject({ id: pushed!.id, outcome: 'replaced' })
    // Make it claimable at once, unless the worker (woken by the push) has claimed it already.
    await t.admin.query(q(`update S.jobs set state = 'pending', vt = 0 where id = $1 and state <> 'running'`), [pushed!.id])
    await waitFor(async () => (await t.admin.query(q(`select 1 from S.jobs where id = $1 and state = 'scheduled' and last_error->>'message' = 'v2 failed'`), [pushed!.id])).rowCount === 1, { message: 'v2 failure recorded' })
    await waitFor(() => lost.length === 1)
    await w.stop()
    const h = await t.admin.query(q(`select result from S.job_history where queue = $1`), [queue])
    expect(h.rows).toEqual([])
    const live = await t.admin.query(q(`select payload, attempt from S.jobs where id = $1`), [pushed!.id])
    expect(live.rows[0]).toMatchObject({ payload: Buffer.from('v2'), attempt: 1 })
    // job:lost names the run that was lost (v1), not the job now in the row.
    expect(lost[0]!.payload?.toString()).toBe('v1')
    reportFigure('worker: replaced keyed job, late result', { wronglyRecorded: h.rows.length })
  })

  it('an idle worker turns a flood of notifications into a few claims', async () => {
    const queue = 'flood'
    const { pool: wpool, count } = countingPool(/set state = 'running'/)
    const w = Worker.create(wpool, { schema: t.schema, queues: [queue], pollMs: 60_000 }, async () => {})
    await w.start()
    await sleep(300)
    const before = count()
    const floodStarted = performance.now()
    // Any login may notify; distinct payloads, so PostgreSQL does not fold them into one.
    const c = new pg.Client({ connectionString: t.userUrl })
    await c.connect()
    for (let i = 0; i < 200; i++) await c.query(`select pg_notify($1, $2)`, [jobsChannel(t.schema), String(i)])
    await c.end()
    await sleep(500)
    const claims = count() - before
    const elapsedMs = performance.now() - floodStarted
    // A job pushed after the flood is still picked up promptly.
    await pushJobs(pool, t.schema, 'acme', queue, 1)
    await waitFor(async () => (await t.admin.query(q(`select 1 from S.job_history where queue = $1`), [queue])).rowCount === 1, { timeoutMs: 3_000 })
    await w.stop()
    await wpool.end()
    // The pacer's bound: a burst of 4, then one claim per wakeGapMs (50) for as long as the flood lasts,
    // which depends on the machine's load; and far fewer claims than notifications either way.
    expect(claims).toBeLessThanOrEqual(4 + Math.ceil(elapsedMs / 50) + 1)
    expect(claims).toBeLessThan(100)
    reportFigure('worker: 200 notifications', { claims, elapsedMs: Math.round(elapsedMs) })
  })

  it('start() after stop() throws a clear error', async () => {
    const w = Worker.create(t.workerUrl, { schema: t.schema, queues: ['never'] }, async () => {})
    await w.start()
    await w.start() // while running: nothing happens
    await w.stop()
    await expect(w.start()).rejects.toThrow(PgQueueStoppedError)
    await expect(w.start()).rejects.toThrow(/create a new Worker/)
    await w.close() // the same as stop(): already done
  })

  it('close() stops a running Worker like stop(): node row removed, no restart', async () => {
    const queue = 'close-worker'
    const w = Worker.create(t.workerUrl, { schema: t.schema, queues: [queue] }, async () => {})
    await w.start()
    await w.close()
    expect(w.isRunning).toBe(false)
    await expect(w.start()).rejects.toThrow(PgQueueStoppedError)
    const { rowCount } = await t.admin.query(q(`select 1 from S.nodes where node_id = $1`), [w.nodeId])
    expect(rowCount).toBe(0)
  })
})

describe('worker leases', () => {
  it('two tenants with the same job id: both keep their leases and are recorded once each', async () => {
    const queue = 'same-id'
    const id = uuidv7()
    await rawPush(pool, t.schema, 'tenant-a', [{ id, queue, payload: Buffer.from('a') }])
    await rawPush(pool, t.schema, 'tenant-b', [{ id, queue, payload: Buffer.from('b') }])
    const s = Scheduler.create(t.workerUrl, { schema: t.schema, pollMs: 100, rescueIntervalMs: 100 })
    const starts: string[] = []
    const lost: Job[] = []
    const w = Worker.create(t.workerUrl, { schema: t.schema, queues: [queue], concurrency: 2, leaseMs: 1_000, heartbeatMs: 200 }, async (job) => {
      starts.push(job.tenantId)
      await sleep(2_500) // more than two leases
      return job.tenantId
    })
    w.on('job:lost', (e) => lost.push(e.job))
    await s.start()
    await w.start()
    await waitFor(async () => (await t.admin.query(q(`select count(*)::int n from S.job_history where queue = $1`), [queue])).rows[0].n === 2, { timeoutMs: 15_000 })
    await w.stop()
    await s.stop()
    const { rows } = await t.admin.query(q(`select tenant_id, state, attempt, convert_from(result, 'UTF8') as r from S.job_history where queue = $1 order by tenant_id`), [queue])
    expect(rows).toEqual([
      { tenant_id: 'tenant-a', state: 'completed', attempt: 1, r: '"tenant-a"' },
      { tenant_id: 'tenant-b', state: 'completed', attempt: 1, r: '"tenant-b"' },
    ])
    expect(starts.sort()).toEqual(['tenant-a', 'tenant-b'])
    expect(lost).toEqual([])
    reportFigure('worker: same id in two tenants', { runs: starts.length, lost: lost.length })
  })

  it("a row lock on one tenant's running job does not cost another tenant's job its lease", async () => {
    const queue = 'row-lock'
    const [a] = await rawPush(pool, t.schema, 'tenant-a', [{ queue, type: 'a' }])
    await rawPush(pool, t.schema, 'tenant-b', [{ queue, type: 'b' }])
    const s = Scheduler.create(t.workerUrl, { schema: t.schema, pollMs: 100, rescueIntervalMs: 100 })
    let releaseA!: () => void
    const aGate = new Promise<void>((r) => (releaseA = r))
    const starts: string[] = []
    const w = Worker.create(t.workerUrl, { schema: t.schema, queues: [queue], concurrency: 2, leaseMs: 1_000, heartbeatMs: 200 }, async (job) => {
      starts.push(job.type)
      if (job.type === 'a') await aGate
      else await sleep(3_000) // three leases
    })
    await s.start()
    await w.start()
    await waitFor(() => starts.length === 2)
    // Tenant A's open transaction holds its running row (as a push by key on a running job does).
    const holder = await t.admin.connect()
    await holder.query('begin')
    await holder.query(q(`select 1 from S.jobs where tenant_id = 'tenant-a' and id = $1 for update`), [a!.id])
    const t0 = Date.now()
    try {
      await waitFor(async () => (await t.admin.query(q(`select 1 from S.job_history where queue = $1 and type = 'b'`), [queue])).rowCount === 1, { timeoutMs: 10_000, message: 'B completed' })
    } finally {
      await holder.query('rollback')
      holder.release()
    }
    const bDone = Date.now() - t0
    releaseA()
    await waitFor(async () => (await t.admin.query(q(`select count(*)::int n from S.job_history where queue = $1`), [queue])).rows[0].n === 2)
    await w.stop()
    await s.stop()
    const { rows } = await t.admin.query(q(`select type, state, attempt from S.job_history where queue = $1 order by type`), [queue])
    // A's own lease could not be renewed while its row was held: it may have been rescued and rerun.
    expect(rows).toEqual([
      { type: 'a', state: 'completed', attempt: expect.any(Number) },
      { type: 'b', state: 'completed', attempt: 1 },
    ])
    expect(starts.filter((x) => x === 'b')).toHaveLength(1)
    reportFigure('worker: tenant row lock during renewal', { bRuns: starts.filter((x) => x === 'b').length, bDoneMs: bDone })
  })

  it("a row lock on a finished job's row does not hold back the worker's other completions", async () => {
    const queue = 'row-lock-finish'
    const [a] = await rawPush(pool, t.schema, 'tenant-a', [{ queue, type: 'a' }])
    await rawPush(pool, t.schema, 'tenant-b', Array.from({ length: 5 }, () => ({ queue, type: 'b' })))
    let aGo!: () => void
    let bGo!: () => void
    const aGate = new Promise<void>((r) => (aGo = r))
    const bGate = new Promise<void>((r) => (bGo = r))
    let started = 0
    const errors: Error[] = []
    const w = Worker.create(t.workerUrl, { schema: t.schema, queues: [queue], concurrency: 10, completeDelayMs: 20 }, async (job) => {
      started += 1
      await (job.type === 'a' ? aGate : bGate)
    })
    w.on('error', (e) => errors.push(e))
    await w.start()
    await waitFor(() => started === 6)
    const holder = await t.admin.connect()
    await holder.query('begin')
    await holder.query(q(`select 1 from S.jobs where tenant_id = 'tenant-a' and id = $1 for update`), [a!.id])
    let bRecordedWhileLocked = false
    try {
      aGo() // A finishes: its completion meets the lock
      await sleep(300)
      bGo()
      await waitFor(async () => (await t.admin.query(q(`select count(*)::int n from S.job_history where queue = $1 and type = 'b'`), [queue])).rows[0].n === 5, { timeoutMs: 8_000, message: "B's outcomes recorded" })
      bRecordedWhileLocked = (await t.admin.query(q(`select 1 from S.jobs where id = $1 and state = 'running'`), [a!.id])).rowCount === 1
    } finally {
      await holder.query('rollback')
      holder.release()
    }
    await waitFor(async () => (await t.admin.query(q(`select 1 from S.job_history where queue = $1 and type = 'a' and state = 'completed' and attempt = 1`), [queue])).rowCount === 1, { timeoutMs: 10_000, message: "A recorded once the lock is gone" })
    await w.stop()
    expect(bRecordedWhileLocked).toBe(true)
    expect(errors.every((e) => (e as { code?: string }).code === '55P03')).toBe(true)
  })

  it('at the connection limit, leases are renewed through the pool', async () => {
    const queue = 'conn-limit'
    await pushJobs(pool, t.schema, 'acme', queue, 1)
    const login = decodeURIComponent(new URL(t.workerUrl).username)
    const { rows: open } = await t.admin.query(`select count(*)::int n from pg_stat_activity where usename = $1`, [login])
    // Room for one pool connection (an idle worker with one job needs no more), not for the lease connection.
    await t.admin.query(`alter role "${login}" connection limit ${open[0].n + 1}`)
    const s = Scheduler.create(t.adminUrl, { schema: t.schema, pollMs: 100, rescueIntervalMs: 100 })
    let runs = 0
    const errors: Error[] = []
    const w = Worker.create(t.workerUrl, { schema: t.schema, queues: [queue], poolSize: 2, listen: false, pollMs: 100, leaseMs: 1_000, heartbeatMs: 200 }, async () => {
      runs += 1
      await sleep(2_500)
    })
    w.on('error', (e) => errors.push(e))
    try {
      await s.start()
      await w.start()
      await waitFor(async () => (await t.admin.query(q(`select 1 from S.job_history where queue = $1`), [queue])).rowCount === 1, { timeoutMs: 10_000 })
      await w.stop()
      await s.stop()
    } finally {
      await t.admin.query(`alter role "${login}" connection limit -1`)
    }
    const { rows } = await t.admin.query(q(`select state, attempt from S.job_history where queue = $1`), [queue])
    expect(rows).toEqual([{ state: 'completed', attempt: 1 }])
    expect(runs).toBe(1)
    expect(errors.some((e) => (e as { code?: string }).code === '53300')).toBe(true)
  })

  it('a lease connection that never answers (silent network) falls back to the pool in time', async () => {
    const queue = 'black-hole'
    await pushJobs(pool, t.schema, 'acme', queue, 1)
    // A server that accepts connections and never says a word.
    const sockets: Socket[] = []
    const hole = createServer((sock) => void sockets.push(sock))
    await new Promise<void>((r) => hole.listen(0, '127.0.0.1', r))
    const port = (hole.address() as AddressInfo).port
    // The worker's pool connects for real first; then its settings point at the black hole, which is
    // where the lease connection (made from those settings) goes.
    const u = new URL(t.workerUrl)
    const wpool = new pg.Pool({ host: u.hostname, port: Number(u.port || 5432), user: decodeURIComponent(u.username), password: decodeURIComponent(u.password), database: u.pathname.slice(1), max: 2, idleTimeoutMillis: 0 })
    wpool.on('error', () => {})
    const warm = await Promise.all([wpool.connect(), wpool.connect()])
    for (const c of warm) c.release()
    ;(wpool as unknown as { options: { port: number } }).options.port = port
    const s = Scheduler.create(t.adminUrl, { schema: t.schema, pollMs: 100, rescueIntervalMs: 100 })
    let runs = 0
    const w = Worker.create(wpool, { schema: t.schema, queues: [queue], listen: false, pollMs: 100, leaseMs: 2_000, heartbeatMs: 500 }, async () => {
      runs += 1
      await sleep(5_000)
    })
    w.on('error', () => {})
    try {
      await s.start()
      await w.start()
      await waitFor(async () => (await t.admin.query(q(`select 1 from S.job_history where queue = $1`), [queue])).rowCount === 1, { timeoutMs: 15_000 })
      await w.stop()
      await s.stop()
    } finally {
      for (const sock of sockets) sock.destroy()
      hole.close()
      await wpool.end()
    }
    const { rows } = await t.admin.query(q(`select state, attempt from S.job_history where queue = $1`), [queue])
    expect(rows).toEqual([{ state: 'completed', attempt: 1 }])
    expect(runs).toBe(1)
    expect(sockets.length).toBeGreaterThan(0)
  })

  it('after an event-loop stall, buffered jobs whose lease lapsed are released, not started', async () => {
    const queue = 'stall'
    await pushJobs(pool, t.schema, 'acme', queue, 1, { type: 'staller' })
    await pushJobs(pool, t.schema, 'acme', queue, 5, { type: 'victim' })
    const started: string[] = []
    const released: Job[] = []
    const thief = new pg.Client({ connectionString: t.adminUrl })
    await thief.connect()
    const w = Worker.create(t.workerUrl, { schema: t.schema, queues: [queue], concurrency: 1, batchSize: 10, leaseMs: 500, heartbeatMs: 150 }, async (job) => {
      started.push(job.type)
      if (job.type !== 'staller' || started.length > 1) return
      await waitFor(async () => (await t.admin.query(q(`select count(*)::int n from S.jobs where queue = $1 and state = 'running'`), [queue])).rows[0].n === 6)
      // While this process is stalled, another worker takes over the buffered jobs once their leases
      // lapse (the statement goes out on an idle connection now; the server runs it during the stall).
      void thief.query(q(`do $$ begin perform pg_sleep(0.7);
        update S.jobs set lease_owner = 'thief', attempt = attempt + 1, lease_expires_at = now() + interval '1 hour'
         where queue = '${queue}' and type = 'victim' and lease_expires_at < clock_timestamp(); end $$`))
      const until = Date.now() + 1_500
      while (Date.now() < until) {} // a synchronous stall: three leases long
    })
    w.on('job:released', (e) => released.push(e.job))
    const lost: Job[] = []
    w.on('job:lost', (e) => lost.push(e.job))
    await w.start()
    await waitFor(() => lost.length + released.length >= 5, { message: 'buffered jobs released or lost' })
    await w.stop()
    await thief.end()
    // None of the victims ran while the thief held them.
    expect(started).toEqual(['staller'])
    const { rows } = await t.admin.query(q(`select count(*)::int n from S.jobs where queue = $1 and type = 'victim' and lease_owner = 'thief'`), [queue])
    expect(rows[0].n).toBe(5)
    reportFigure('worker: event-loop stall', { overlappingRuns: started.length - 1 })
  })

  it('a buffered job released unstarted gets its attempt back', async () => {
    const queue = 'stall-own'
    await pushJobs(pool, t.schema, 'acme', queue, 1, { type: 'staller' })
    await pushJobs(pool, t.schema, 'acme', queue, 3, { type: 'victim' })
    const runs: { type: string; attempt: number }[] = []
    const w = Worker.create(t.workerUrl, { schema: t.schema, queues: [queue], concurrency: 1, batchSize: 10, leaseMs: 500, heartbeatMs: 150 }, async (job) => {
      runs.push({ type: job.type, attempt: job.attempt })
      if (job.type !== 'staller') return
      await waitFor(async () => (await t.admin.query(q(`select count(*)::int n from S.jobs where queue = $1 and state = 'running'`), [queue])).rows[0].n === 4)
      const until = Date.now() + 1_200
      while (Date.now() < until) {}
    })
    const released: Job[] = []
    w.on('job:released', (e) => released.push(e.job))
    await w.start()
    await waitFor(async () => (await t.admin.query(q(`select count(*)::int n from S.job_history where queue = $1`), [queue])).rows[0].n === 4)
    await w.stop()
    expect(released.length).toBe(3)
    const { rows } = await t.admin.query(q(`select type, attempt from S.job_history where queue = $1 order by type`), [queue])
    expect(rows.map((r) => r.attempt)).toEqual([1, 1, 1, 1])
    expect(runs.filter((r) => r.type === 'victim').map((r) => r.attempt)).toEqual([1, 1, 1])
  })
})
