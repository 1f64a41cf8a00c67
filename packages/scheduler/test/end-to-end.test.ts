// Worker and Scheduler together. The Worker is imported through its package entry point by path, since
// this package does not depend on @pgqueue/worker (see the report: a tests/ workspace is the better home).
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spawn, execFileSync } from 'node:child_process'
import { resolve } from 'node:path'
import pg from 'pg'
import { createIsolatedDatabase, waitFor, type IsolatedDatabase } from '@pgqueue/testing'
import { migrate } from '@pgqueue/core'
import { Scheduler } from '@pgqueue/scheduler'
import { Worker } from '@pgqueue/worker'
import { pushJobs } from '@pgqueue/testing'

let t: IsolatedDatabase
let pool: pg.Pool
const q = (s: string) => s.replaceAll('S.', `"${t.schema}".`)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

beforeAll(async () => {
  t = await createIsolatedDatabase('e2e')
  await migrate(t.adminUrl, t.schemaOptions)
  pool = new pg.Pool({ connectionString: t.workerUrl, max: 2 })
})
afterAll(async () => {
  await pool?.end()
  await t.cleanup()
})

/** Runs A's backlog with a worker, pushes B's 10 jobs later, returns how long B waited for its last start. */
async function fairness(queue: string, backlog: number): Promise<{ waitMs: number; aLeft: number }> {
  await pushJobs(pool, t.schema, 'tenant-a', queue, backlog)
  const started = new Map<string, number>()
  const w = Worker.create(t.workerUrl, { schema: t.schema, queues: [queue], concurrency: 10 }, async (job) => {
    if (job.tenantId === 'tenant-b') started.set(job.id, Date.now())
    await sleep(1)
  })
  await w.start()
  await sleep(500)
  const t0 = Date.now()
  await pushJobs(pool, t.schema, 'tenant-b', queue, 10)
  await waitFor(() => started.size === 10, { timeoutMs: 30_000 })
  const waitMs = Math.max(...started.values()) - t0
  const { rows } = await t.admin.query(q(`select count(*)::int n from S.jobs where queue = $1 and tenant_id = 'tenant-a'`), [queue])
  await w.stop({ timeoutMs: 1_000 })
  await t.admin.query(q(`delete from S.jobs where queue = $1`), [queue])
  return { waitMs, aLeft: rows[0].n }
}

describe('fairness', () => {
  it('B’s jobs start within about one round behind A’s 20,000', async () => {
    const r = await fairness('fair20k', 20_000)
    console.log(`fairness 20k: B's 10 jobs all started ${r.waitMs} ms after the push; A still had ${r.aLeft} queued`)
    expect(r.aLeft).toBeGreaterThan(10_000)
    expect(r.waitMs).toBeLessThan(1_000)
  })

  it.runIf(process.env.PGQUEUE_LONG_TESTS === '1')('the bound does not grow with 200,000 queued', async () => {
    const r = await fairness('fair200k', 200_000)
    console.log(`fairness 200k: B's 10 jobs all started ${r.waitMs} ms after the push; A still had ${r.aLeft} queued`)
    expect(r.aLeft).toBeGreaterThan(150_000)
    expect(r.waitMs).toBeLessThan(1_000)
  }, 300_000)
})

describe('several schedulers and workers', () => {
  it('complete 10,000 jobs exactly once, with delays and retries in the mix', async () => {
    const queue = 'many'
    for (let i = 0; i < 20; i++) {
      await pushJobs(pool, t.schema, `t${i}`, queue, 400)
      await pushJobs(pool, t.schema, `t${i}`, queue, 50, { runAt: new Date(Date.now() + 500 + i * 20), type: 'delayed' })
      await pushJobs(pool, t.schema, `t${i}`, queue, 50, { type: 'flaky', retryPolicy: { type: 'constant', delayMs: 50, maxAttempts: 3 }, maxAttempts: 3 })
    }
    const schedulers = [0, 1].map((i) => Scheduler.create(t.workerUrl, { schema: t.schema, nodeId: `s${i}`, pollMs: 100, poolSize: 1 }))
    const workers = [0, 1, 2].map((i) =>
      Worker.create(t.workerUrl, { schema: t.schema, nodeId: `w${i}`, queues: [queue], concurrency: 8, poolSize: 2 }, async (job) => {
        if (job.type === 'flaky' && job.attempt === 1) throw new Error('first try fails')
        return { by: i }
      }),
    )
    for (const s of schedulers) await s.start()
    for (const w of workers) await w.start()
    await waitFor(async () => (await t.admin.query(q(`select count(*)::int n from S.job_history where queue = 'many'`))).rows[0].n >= 10_000, { timeoutMs: 60_000, intervalMs: 200 })
    for (const w of workers) await w.stop()
    for (const s of schedulers) await s.stop()
    const { rows } = await t.admin.query(q(`select count(*)::int n, count(distinct id)::int d, count(*) filter (where state = 'completed')::int c,
                                                 count(*) filter (where type = 'flaky' and attempt = 2)::int f from S.job_history where queue = 'many'`))
    expect(rows[0]).toEqual({ n: 10_000, d: 10_000, c: 10_000, f: 1_000 })
    expect((await t.admin.query(q(`select 1 from S.jobs where queue = 'many'`))).rowCount).toBe(0)
  }, 90_000)
})

describe('faults', () => {
  it('kill -9 of a worker mid-batch: its jobs rerun after lease expiry, nothing lost', async () => {
    const queue = 'killed'
    await pushJobs(pool, t.schema, 'k', queue, 200)
    const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=@pgqueue/source', resolve(import.meta.dirname, '../../worker/test/fixtures/worker-child.ts'), t.workerUrl, t.schema, queue, 'doomed'], {
      cwd: resolve(import.meta.dirname, '../../worker'),
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let startedInChild = 0
    child.stdout.on('data', (d: Buffer) => (startedInChild += (d.toString().match(/started/g) ?? []).length))
    await waitFor(() => startedInChild >= 30, { timeoutMs: 30_000 })
    child.kill('SIGKILL')
    await new Promise((r) => child.once('exit', r))
    // A statement the child sent before it died still runs to its end (a completion may yet commit):
    // count what it held once its backends are gone. No other session of this file's worker login is open.
    await waitFor(async () => (await t.admin.query(`select count(*)::int n from pg_stat_activity where usename = $1`, [`${t.schema}_wl`])).rows[0].n === 0, { timeoutMs: 10_000 })
    const held = await t.admin.query(q(`select count(*)::int n from S.jobs where queue = $1 and state = 'running' and split_part(lease_owner, '/', 1) = 'doomed'`), [queue])
    expect(held.rows[0].n).toBeGreaterThan(0)
    const s = Scheduler.create(t.workerUrl, { schema: t.schema, pollMs: 100 })
    const w = Worker.create(t.workerUrl, { schema: t.schema, queues: [queue], concurrency: 10 }, async () => 'ok')
    await s.start()
    await w.start()
    await waitFor(async () => (await t.admin.query(q(`select count(*)::int n from S.job_history where queue = $1`), [queue])).rows[0].n === 200, { timeoutMs: 30_000 })
    await w.stop()
    await s.stop()
    const { rows } = await t.admin.query(q(`select count(distinct id)::int d, count(*) filter (where state = 'completed')::int c, count(*) filter (where attempt = 2)::int reran from S.job_history where queue = $1`), [queue])
    expect(rows[0].d).toBe(200)
    expect(rows[0].c).toBe(200)
    expect(rows[0].reran).toBeGreaterThanOrEqual(held.rows[0].n)
    expect((await t.admin.query(q(`select 1 from S.jobs where queue = $1`), [queue])).rowCount).toBe(0)
  }, 60_000)

  // Restarts the machine's PostgreSQL: disturbs every other session, so only on request.
  it.runIf(process.env.PGQUEUE_FAULT_TESTS === '1')('PostgreSQL restarted while jobs flow: all complete afterwards', async () => {
    const queue = 'restart'
    await pushJobs(pool, t.schema, 'r', queue, 3_000)
    await pushJobs(pool, t.schema, 'r', queue, 200, { runAt: new Date(Date.now() + 3_000) })
    const s = Scheduler.create(t.workerUrl, { schema: t.schema, pollMs: 200 })
    const w = Worker.create(t.workerUrl, { schema: t.schema, queues: [queue], concurrency: 10, leaseMs: 3_000 }, async () => sleep(2))
    const errors: Error[] = []
    s.on('error', (e) => errors.push(e))
    w.on('error', (e) => errors.push(e))
    await s.start()
    await w.start()
    await waitFor(async () => (await t.admin.query(q(`select count(*)::int n from S.job_history where queue = $1`), [queue])).rows[0].n > 200, { timeoutMs: 30_000 })
    const cluster = process.env.PGQUEUE_PG_CLUSTER ?? '15 main'
    execFileSync('pg_ctlcluster', ['--skip-systemctl-redirect', ...cluster.split(' '), 'restart'], { stdio: 'inherit' })
    await waitFor(async () => (await t.admin.query(q(`select count(*)::int n from S.job_history where queue = $1`), [queue])).rows[0].n === 3_200, { timeoutMs: 60_000, intervalMs: 500 })
    await w.stop()
    await s.stop()
    expect(errors.length).toBeGreaterThan(0)
    const { rows } = await t.admin.query(q(`select count(distinct id)::int d from S.job_history where queue = $1 and state = 'completed'`), [queue])
    expect(rows[0].d).toBe(3_200)
  }, 120_000)
})
