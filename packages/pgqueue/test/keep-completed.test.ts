import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createIsolatedDatabase, inTenantTx, waitFor, type IsolatedDatabase } from '@pgqueue/testing'
import pg from 'pg'
import pgqueue, { Maintenance, PgQueueNotFoundError, PgQueueValidationError, Stats, Worker } from 'pgqueue'

type Client = Awaited<ReturnType<typeof pgqueue.quickstart>>
type QueueStats = Awaited<ReturnType<Stats['queues']>>[number]

let t: IsolatedDatabase
let client: Client
let s: string
let user: pg.Pool
beforeAll(async () => {
  t = await createIsolatedDatabase('keepcompleted')
  await pgqueue.initialize(t.adminUrl, t.schemaOptions)
  client = await pgqueue.quickstart(t.userUrl, { schema: t.schema })
  s = `"${t.schema}"`
  user = new pg.Pool({ connectionString: t.userUrl, max: 1 })
})
afterAll(async () => {
  await user.end()
  await client.close()
  await t.cleanup()
})

/** A Worker over every queue that fails jobs whose payload says so (maxAttempts 1: straight to history) and sleeps `runMs` otherwise. */
function worker(nodeId: string, runMs = 0): Worker {
  return Worker.create(t.workerUrl, { schema: t.schema, nodeId, concurrency: 20, pollMs: 50 }, async (job) => {
    const p = job.data as { fail?: boolean } | null
    if (p?.fail) throw new Error('told to fail')
    if (runMs > 0) await new Promise((r) => setTimeout(r, runMs))
    return { result: 'ok' }
  })
}

async function pushMix(tenant: string, queue: string, n: number, failEvery: number): Promise<string[]> {
  const items = Array.from({ length: n }, (_, i) => ({
    queue, type: 'work', payload: { fail: (i + 1) % failEvery === 0 }, retryPolicy: { type: 'constant' as const, delayMs: 10, maxAttempts: 1 },
  }))
  return (await client.queues.withTenant(tenant).pushMany(items)).map((r) => r.id)
}

async function drained(): Promise<void> {
  await waitFor(async () => (await t.admin.query(`select count(*)::int as n from ${s}.jobs`)).rows[0].n === 0, { timeoutMs: 30_000, message: 'all jobs finished' })
}

const finished = (qs: QueueStats[]) => Object.fromEntries(qs.map((q) => [q.queue, { completed: q.completed, failed: q.failed }]))

describe('configureQueue({ keepCompleted })', () => {
  it('defaults to true, round-trips, and refuses a non-boolean before writing', async () => {
    const acme = client.queues.withTenant('acme')
    expect(await acme.getQueue('fresh')).toBeNull()
    expect((await acme.configureQueue('fresh', { displayName: 'Fresh' })).keepCompleted).toBe(true)
    expect((await acme.configureQueue('fresh', { keepCompleted: false })).keepCompleted).toBe(false)
    expect((await acme.getQueue('fresh'))!.keepCompleted).toBe(false)
    await expect(acme.configureQueue('other', { keepCompleted: 'no' as never })).rejects.toBeInstanceOf(PgQueueValidationError)
    expect(await acme.getQueue('other')).toBeNull()
  })
})

describe('completed jobs of a queue that keeps none', () => {
  it('leave no history row, keep failures, and are counted exactly in mixed batches', async () => {
    for (const tenant of ['a', 'b']) await client.queues.withTenant(tenant).configureQueue('lean', { keepCompleted: false })
    const w = worker('w-mixed', 5)
    await w.start()
    try {
      // Two tenants, one queue of each kind: the worker's completion batches mix kept and dropped runs.
      await Promise.all([pushMix('a', 'lean', 300, 10), pushMix('a', 'full', 200, 10), pushMix('b', 'lean', 150, 7), pushMix('b', 'full', 50, 7)])
      await drained()
    } finally {
      await w.stop()
    }
    const hist = await t.admin.query(`select tenant_id, queue, state, count(*)::int as n from ${s}.job_history group by 1, 2, 3 order by 1, 2, 3`)
    expect(hist.rows).toEqual([
      { tenant_id: 'a', queue: 'full', state: 'completed', n: 180 },
      { tenant_id: 'a', queue: 'full', state: 'failed', n: 20 },
      { tenant_id: 'a', queue: 'lean', state: 'failed', n: 30 },
      { tenant_id: 'b', queue: 'full', state: 'completed', n: 43 },
      { tenant_id: 'b', queue: 'full', state: 'failed', n: 7 },
      { tenant_id: 'b', queue: 'lean', state: 'failed', n: 21 },
    ])
    const counted = await t.admin.query(`
      select tenant_id, queue, sum(completed)::int as n, count(*)::int as rows,
             sum(cardinality(wait_buckets))::int as waits, sum(cardinality(run_buckets))::int as runs
        from ${s}.completion_counts group by 1, 2 order by 1, 2`)
    expect(counted.rows.map((r) => [r.tenant_id, r.queue, r.n, r.waits, r.runs])).toEqual([['a', 'lean', 270, 270, 270], ['b', 'lean', 129, 129, 129]])
    // Batched: far fewer rows than completions.
    expect(counted.rows[0].rows).toBeLessThan(270)

    // Tenant Stats (raw rows through RLS), global exact and global from rollups agree.
    const stats = Stats.create(t.userUrl, { schema: t.schema })
    const global = Stats.create(t.workerUrl, { schema: t.schema })
    try {
      expect(finished(await stats.forTenant('a').queues())).toEqual({ full: { completed: 180, failed: 20 }, lean: { completed: 270, failed: 30 } })
      expect(finished(await stats.forTenant('b').queues())).toEqual({ full: { completed: 43, failed: 7 }, lean: { completed: 129, failed: 21 } })
      const want = { full: { completed: 223, failed: 27 }, lean: { completed: 399, failed: 51 } }
      expect(finished(await global.queues({ exact: true }))).toEqual(want)
      const lat = await stats.forTenant('a').latency({ queue: 'lean' })
      expect(lat.map((l) => [l.queue, l.count])).toEqual([['lean', 300]])
      // Runs slept 5 ms: the histograms' percentiles see it (bucket bound 9.1 %).
      expect(lat[0]!.runMs.p50).toBeGreaterThanOrEqual(4.5)
      const hour = { from: new Date(Date.now() - 3_600_000), to: new Date(Date.now() + 60_000), bucket: 'hour' as const }
      const sum = (h: { completed: number }[]) => h.reduce((n, p) => n + p.completed, 0)
      expect(sum(await stats.forTenant('b').histogram({ ...hour, queue: 'lean' }))).toBe(129)
      expect(sum(await global.histogram({ ...hour, exact: true }))).toBe(622)

      // Move everything two hours back and roll it up: the rollups count the dropped completions too.
      await t.admin.query(`update ${s}.completion_counts set finished_at = finished_at - interval '2 hours'`)
      await t.admin.query(`update ${s}.job_history set finished_at = finished_at - interval '2 hours', started_at = started_at - interval '2 hours',
                             run_at = run_at - interval '2 hours'`)
      const m = Maintenance.create(t.adminUrl, { ...t.schemaOptions, rollupSafetyLagMs: 0, poolSize: 1,
        tasks: { partitions: false, retention: false, nodes: false, leases: false, vacuum: false, rollup: true, liveCounts: false } })
      try {
        for (;;) if ((await m.runOnce()).rollup!.caughtUp) break
      } finally {
        await m.close()
      }
      const rolled = await t.admin.query(`select queue, sum(completed)::int as c, sum((select sum(x) from unnest(run_hist) x))::int as runs
                                            from ${s}.history_rollup_minutes group by 1 order by 1`)
      expect(rolled.rows).toEqual([{ queue: 'full', c: 223, runs: 250 }, { queue: 'lean', c: 399, runs: 450 }])
      expect(finished(await global.queues())).toEqual(want)
      const three = { from: new Date(Date.now() - 3 * 3_600_000), to: new Date(Date.now()), bucket: 'hour' as const }
      expect(await global.histogram(three)).toEqual(await global.histogram({ ...three, exact: true }))
      const fast = await global.latency()
      const exact = await global.latency({ exact: true })
      expect(fast.map((l) => [l.queue, l.count])).toEqual([['full', 250], ['lean', 450]])
      expect(exact.map((l) => [l.queue, l.count])).toEqual([['full', 250], ['lean', 450]])
      expect(exact[1]!.runMs).toEqual(fast[1]!.runMs)
    } finally {
      await stats.close()
      await global.close()
    }
  })

  it('applies a change of the setting to the next completions, and get(id) and retry() answer for a dropped job', async () => {
    const c = client.queues.withTenant('c')
    await c.configureQueue('switch', { keepCompleted: false })
    const w = worker('w-switch')
    await w.start()
    try {
      const [dropped] = await pushMix('c', 'switch', 1, 1000)
      await drained()
      await c.configureQueue('switch', { keepCompleted: true })
      const [kept] = await pushMix('c', 'switch', 1, 1000)
      await drained()
      expect(await c.get(dropped!)).toBeNull()
      await expect(c.retry(dropped!)).rejects.toBeInstanceOf(PgQueueNotFoundError)
      expect(await c.get(kept!)).toMatchObject({ id: kept, state: 'completed' })
      expect(finished(await client.stats.forTenant('c').queues())).toEqual({ switch: { completed: 2, failed: 0 } })
    } finally {
      await w.stop()
    }
  })

  it('records the same latency buckets as history would have', async () => {
    // Waits at the middle of latency buckets 60, 70, 80 and 90 (30 s to 1.5 h), so the few milliseconds
    // between the two queues' claims cannot move a job across a bucket edge.
    const waitsMs = [60, 70, 80, 90].map((i) => Math.round(2 ** ((i - 0.5) / 4)))
    const h = client.queues.withTenant('h')
    await h.configureQueue('dropq', { keepCompleted: false })
    const later = new Date(Date.now() + 3_600_000)
    for (const queue of ['keepq', 'dropq']) {
      await h.pushMany(waitsMs.map((w) => ({ queue, type: 'work', runAt: later, payload: { w } })))
    }
    // Due now, with run_at as far back as each job's wait.
    await t.admin.query(`update ${s}.jobs set state = 'pending', vt = 1, run_at = now() - ((convert_from(payload, 'UTF8')::jsonb->>'w')::bigint * interval '1 millisecond')
                          where tenant_id = 'h'`)
    const w = worker('w-buckets')
    await w.start()
    try {
      await drained()
    } finally {
      await w.stop()
    }
    const kept = await t.admin.query(`select array_agg(b order by b) as b from (
                                        select ${s}.latency_bucket(greatest(extract(epoch from started_at - run_at) * 1000, 0)::float8) as b
                                          from ${s}.job_history where tenant_id = 'h' and queue = 'keepq') x`)
    const dropped = await t.admin.query(`select array_agg(b::int order by b) as b from ${s}.completion_counts c, unnest(c.wait_buckets) b
                                           where tenant_id = 'h' and queue = 'dropq'`)
    expect(kept.rows[0].b).toEqual([60, 70, 80, 90])
    expect(dropped.rows[0].b).toEqual(kept.rows[0].b)
    const global = Stats.create(t.workerUrl, { schema: t.schema })
    try {
      const lat = await global.latency({ window: 60_000 })
      const byQueue = Object.fromEntries(lat.map((l) => [l.queue, l]))
      expect(byQueue.dropq!.count).toBe(4)
      expect(byQueue.dropq!.waitMs).toEqual(byQueue.keepq!.waitMs)
    } finally {
      await global.close()
    }
  })

  it('counts rows are visible to their own tenant only, and written only by the worker role', async () => {
    const seen = (tenant: string | null) => inTenantTx(user, tenant, async (db) =>
      (await db.query(`select distinct tenant_id from ${s}.completion_counts order by 1`)).rows.map((r) => r.tenant_id))
    expect(await seen('a')).toEqual(['a'])
    expect(await seen('b')).toEqual(['b'])
    expect(await seen(null)).toEqual([])
    await expect(inTenantTx(user, 'a', (db) => db.query(
      `insert into ${s}.completion_counts (tenant_id, queue, id, completed, wait_buckets, run_buckets) values ('a', 'lean', gen_random_uuid(), 1, '{0}', '{0}')`)))
      .rejects.toMatchObject({ code: '42501' })
    await expect(inTenantTx(user, 'a', (db) => db.query(`delete from ${s}.completion_counts`))).rejects.toMatchObject({ code: '42501' })
    await expect(inTenantTx(user, 'a', (db) => db.query(`update ${s}.queues set keep_completed = false where queue = 'full'`)))
      .resolves.toBeDefined()
  })

  it('counts rows older than the retention go with history', async () => {
    await t.admin.query(`insert into ${s}.completion_counts (tenant_id, queue, finished_at, id, completed, wait_buckets, run_buckets)
                         values ('old', 'q', now() - interval '400 days', gen_random_uuid(), 3, '{0,1,2}', '{0,1,2}')`)
    const report = await Maintenance.runOnce(t.adminUrl, { ...t.schemaOptions, poolSize: 1,
      tasks: { partitions: false, retention: true, nodes: false, leases: false, vacuum: false, rollup: false, liveCounts: false } })
    expect(report.retention!.completionCountRowsDeleted).toBe(1)
    expect((await t.admin.query(`select count(*)::int as n from ${s}.completion_counts where tenant_id = 'old'`)).rows[0].n).toBe(0)
  })
})
