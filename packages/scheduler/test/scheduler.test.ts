import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import pg from 'pg'
import { createIsolatedDatabase, waitFor, type IsolatedDatabase } from '@pgqueue/testing'
import { migrate, PgQueueStoppedError, PgQueueValidationError } from '@pgqueue/core'
import { Scheduler } from '@pgqueue/scheduler'
import { pushJobs } from '@pgqueue/testing'

let t: IsolatedDatabase
let pool: pg.Pool
const q = (s: string) => s.replaceAll('S.', `"${t.schema}".`)

/** A claim by plain SQL, standing in for a worker. */
async function claim(queue: string, n: number, leaseMs = 60_000): Promise<{ tenant_id: string; id: string }[]> {
  const { rows } = await pool.query(
    q(`update S.jobs j set state = 'running', attempt = attempt + 1, lease_owner = 'sql', lease_expires_at = now() + $3 * interval '1 ms'
        where (tenant_id, id) in (select tenant_id, id from S.jobs where queue = $1 and state = 'pending' order by priority desc, vt limit $2 for update skip locked)
        returning tenant_id, id`),
    [queue, n, leaseMs],
  )
  return rows
}
async function states(queue: string): Promise<Record<string, number>> {
  const { rows } = await t.admin.query(q(`select state, count(*)::int n from S.jobs where queue = $1 group by state`), [queue])
  return Object.fromEntries(rows.map((r) => [r.state, r.n]))
}

beforeAll(async () => {
  t = await createIsolatedDatabase('scheduler')
  await migrate(t.adminUrl, t.schemaOptions)
  pool = new pg.Pool({ connectionString: t.workerUrl, max: 3 })
})
afterAll(async () => {
  await pool?.end()
  await t.cleanup()
})

describe('Scheduler', () => {
  it('validates options at construction', () => {
    expect(() => Scheduler.create(t.workerUrl, { pollMs: 0 })).toThrow(PgQueueValidationError)
    expect(() => Scheduler.create(t.workerUrl, { schema: 'Bad-Name' })).toThrow(/schema/)
  })

  it('promotes due delayed jobs into the fair order with fresh virtual times', async () => {
    await pushJobs(pool, t.schema, 'a', 'delayed', 3, { runAt: new Date(Date.now() + 1_500) })
    const s = Scheduler.create(t.workerUrl, { schema: t.schema })
    const first = await s.runOnce()
    expect(first, JSON.stringify(first)).toMatchObject({ promoted: 0 })
    expect(await states('delayed')).toEqual({ scheduled: 3 })
    await waitFor(async () => (await s.runOnce()).promoted === 3, { timeoutMs: 5_000 })
    const { rows } = await t.admin.query(q(`select vt from S.jobs where queue = 'delayed' order by vt`))
    // One stride (1000 at the default weight) apart.
    expect(rows.map((r) => Number(r.vt))).toEqual([1000, 2000, 3000])
    await s.close()
  })

  it('close() stops a running Scheduler and finishes it: runOnce() and start() throw PgQueueStoppedError', async () => {
    const s = Scheduler.create(t.workerUrl, { schema: t.schema })
    await s.start()
    await s.close()
    expect(s.isRunning).toBe(false)
    await expect(s.runOnce()).rejects.toBeInstanceOf(PgQueueStoppedError)
    await expect(s.start()).rejects.toBeInstanceOf(PgQueueStoppedError)
    await s.close()
  })

  it('parks jobs of a paused queue in held and releases them after unpause', async () => {
    await t.admin.query(q(`insert into S.queues (tenant_id, queue, paused) values ('a', 'paused', true)`))
    await pushJobs(pool, t.schema, 'a', 'paused', 5)
    await pushJobs(pool, t.schema, 'a', 'paused', 2, { runAt: new Date(Date.now() - 1) })
    await pushJobs(pool, t.schema, 'b', 'paused', 2)
    const s = Scheduler.create(t.workerUrl, { schema: t.schema })
    await s.runOnce()
    const { rows } = await t.admin.query(q(`select tenant_id, state, count(*)::int n from S.jobs where queue = 'paused' group by 1, 2 order by 1, 2`))
    expect(rows).toEqual([{ tenant_id: 'a', state: 'held', n: 7 }, { tenant_id: 'b', state: 'pending', n: 2 }])
    await t.admin.query(q(`update S.queues set paused = false where tenant_id = 'a' and queue = 'paused'`))
    expect(await s.runOnce()).toMatchObject({ released: 7 })
    expect(await states('paused')).toEqual({ pending: 9 })
    await s.close()
  })

  it('keeps a tenant under its max concurrency', async () => {
    await t.admin.query(q(`insert into S.queues (tenant_id, queue, max_concurrency) values ('a', 'capped', 3)`))
    await pushJobs(pool, t.schema, 'a', 'capped', 10)
    const s = Scheduler.create(t.workerUrl, { schema: t.schema })
    await s.runOnce()
    expect(await states('capped')).toEqual({ held: 7, pending: 3 })
    await s.runOnce()
    expect(await states('capped')).toEqual({ held: 7, pending: 3 })
    const got = await claim('capped', 10)
    expect(got).toHaveLength(3)
    await s.runOnce()
    expect(await states('capped')).toEqual({ held: 7, running: 3 })
    await pool.query(q(`delete from S.jobs where tenant_id = $1 and id = $2`), [got[0]!.tenant_id, got[0]!.id])
    await s.runOnce()
    expect(await states('capped')).toEqual({ held: 6, running: 2, pending: 1 })
    await s.close()
  })

  it('two schedulers releasing the same capped pair never overshoot the cap', async () => {
    await t.admin.query(q(`insert into S.queues (tenant_id, queue, max_concurrency) values ('a', 'race', 5)`))
    await t.admin.query(q(`insert into S.queues (tenant_id, queue, paused) values ('a', 'race2', true)`))
    await pushJobs(pool, t.schema, 'a', 'race', 50)
    const s1 = Scheduler.create(t.workerUrl, { schema: t.schema })
    const s2 = Scheduler.create(t.workerUrl, { schema: t.schema })
    for (let i = 0; i < 10; i++) {
      await Promise.all([s1.runOnce(), s2.runOnce()])
      const st = await states('race')
      expect((st.pending ?? 0) + (st.running ?? 0)).toBeLessThanOrEqual(5)
      await claim('race', 2)
      await pool.query(q(`delete from S.jobs where queue = 'race' and state = 'running' and id in (select id from S.jobs where queue = 'race' and state = 'running' limit 1)`))
    }
    await s1.close()
    await s2.close()
  })

  it('rescues expired leases: back to scheduled with the attempt counted, or to failed history', async () => {
    await pushJobs(pool, t.schema, 'a', 'rescue', 2, { maxAttempts: 2 })
    await claim('rescue', 2, 1)
    // One of them has used its last attempt.
    await t.admin.query(q(`update S.jobs set attempt = 2 where id = (select id from S.jobs where queue = 'rescue' order by id limit 1)`))
    await new Promise((r) => setTimeout(r, 20))
    const s = Scheduler.create(t.workerUrl, { schema: t.schema })
    const stats = await s.runOnce()
    expect(stats).toMatchObject({ rescued: 1, failed: 1, promoted: 1 })
    const live = await t.admin.query(q(`select state, attempt, lease_owner, last_error from S.jobs where queue = 'rescue'`))
    expect(live.rows[0]).toMatchObject({ state: 'pending', attempt: 1, lease_owner: null })
    expect(live.rows[0].last_error.message).toBe('lease expired')
    const hist = await t.admin.query(q(`select state, attempt, error from S.job_history where queue = 'rescue'`))
    expect(hist.rows[0]).toMatchObject({ state: 'failed', attempt: 2 })
    expect(hist.rows[0].error.message).toBe('lease expired')
    await s.close()
  })

  it('rescues an expired lease of a job whose cancel was requested into cancelled history, with the one error record', async () => {
    await pushJobs(pool, t.schema, 'a', 'rescue-cancel', 1, { maxAttempts: 5 })
    await claim('rescue-cancel', 1, 1)
    await t.admin.query(q(`update S.jobs set cancel_requested = true where queue = 'rescue-cancel'`))
    await new Promise((r) => setTimeout(r, 20))
    const s = Scheduler.create(t.workerUrl, { schema: t.schema })
    const stats = await s.runOnce()
    expect(stats).toMatchObject({ rescued: 0, failed: 0, cancelled: 1 })
    const live = await t.admin.query(q(`select 1 from S.jobs where queue = 'rescue-cancel'`))
    expect(live.rows).toEqual([])
    const hist = await t.admin.query(q(`select state, attempt, error from S.job_history where queue = 'rescue-cancel'`))
    expect(hist.rows).toEqual([{ state: 'cancelled', attempt: 1, error: { message: 'lease expired', name: 'LeaseExpiredError', code: 'LEASE_EXPIRED', attempt: 1, at: expect.any(String) } }])
    expect(new Date(hist.rows[0].error.at).toISOString()).toBe(hist.rows[0].error.at)
    await s.close()
  })

  it('a running Scheduler rescues at most once per rescueIntervalMs; runOnce() always rescues', async () => {
    expect(() => Scheduler.create(t.workerUrl, { rescueIntervalMs: -1 })).toThrow(/rescueIntervalMs/)
    const s = Scheduler.create(t.workerUrl, { schema: t.schema, rescueIntervalMs: 1_500, pollMs: 50 })
    const rescued: number[] = []
    s.on('round', (r) => rescued.push(r.rescued))
    await s.start()
    // The first round rescued (nothing yet); an expiry right after waits for the interval.
    await new Promise((r) => setTimeout(r, 200))
    await pushJobs(pool, t.schema, 'a', 'rescue-interval', 1)
    await claim('rescue-interval', 1, 1)
    const expiredAt = Date.now()
    await waitFor(async () => (await states('rescue-interval')).running === undefined, { timeoutMs: 5_000, intervalMs: 20 })
    const waited = Date.now() - expiredAt
    await s.stop()
    expect(rescued.reduce((a, b) => a + b, 0)).toBe(1)
    expect(waited).toBeGreaterThan(900)
    // runOnce() (cron-style use) does not wait for the interval.
    await pushJobs(pool, t.schema, 'a', 'rescue-interval', 1)
    await new Promise((r) => setTimeout(r, 50))
    const claimed = await claim('rescue-interval', 5, 1)
    expect(claimed.length).toBeGreaterThan(0)
    await new Promise((r) => setTimeout(r, 20))
    const once = Scheduler.create(t.workerUrl, { schema: t.schema, rescueIntervalMs: 60_000 })
    expect((await once.runOnce()).rescued).toBe(claimed.length)
    expect(await states('rescue-interval')).not.toHaveProperty('running')
    await once.close()
  })

  it('registers in nodes while running and wakes on a push into a paused queue', async () => {
    await t.admin.query(q(`insert into S.queues (tenant_id, queue, max_concurrency) values ('a', 'wake', 100)`))
    const s = Scheduler.create(t.workerUrl, { schema: t.schema, nodeId: 'sch-1', pollMs: 10_000 })
    await s.start()
    await waitFor(async () => (await t.admin.query(q(`select 1 from S.nodes where node_id = 'sch-1' and kind = 'scheduler'`))).rowCount === 1)
    await new Promise((r) => setTimeout(r, 300))
    await pushJobs(pool, t.schema, 'a', 'wake', 3)
    await waitFor(async () => (await states('wake')).pending === 3, { timeoutMs: 2_000 })
    await s.stop()
    expect((await t.admin.query(q(`select 1 from S.nodes where node_id = 'sch-1'`))).rowCount).toBe(0)
  })

  it('a stream of pushes starts a round at most once per notifyGapMs, and the last push is still handled', async () => {
    await t.admin.query(q(`insert into S.queues (tenant_id, queue, max_concurrency) values ('a', 'stream', 1000)`))
    const s = Scheduler.create(t.workerUrl, { schema: t.schema, pollMs: 10_000, notifyGapMs: 200 })
    let rounds = 0
    const round = s.runOnce.bind(s)
    s.runOnce = async () => {
      rounds += 1
      return round()
    }
    await s.start()
    await new Promise((r) => setTimeout(r, 300))
    rounds = 0
    const t0 = Date.now()
    // About a second of pushes, each notifying.
    for (let i = 0; i < 60; i++) {
      await pushJobs(pool, t.schema, 'a', 'stream', 1)
      await new Promise((r) => setTimeout(r, 15))
    }
    const elapsed = Date.now() - t0
    const during = rounds
    // Every pushed job ends up released from held, the last one by the round its notification started.
    await waitFor(async () => (await states('stream')).pending === 60, { timeoutMs: 3_000 })
    await s.stop()
    // Without the gap: one round per push, or one 50 ms after each round that saw a notification.
    expect(during).toBeLessThanOrEqual(Math.ceil(elapsed / 200) + 2)
    expect(() => Scheduler.create(t.workerUrl, { notifyGapMs: -1 })).toThrow(/notifyGapMs/)
  })

  it('visits a bounded number of held pairs per round and rotates', async () => {
    for (let i = 0; i < 6; i++) await pushJobs(pool, t.schema, `rot${i}`, 'rot', 1)
    await t.admin.query(q(`update S.jobs set state = 'held', vt = null where queue = 'rot'`))
    const s = Scheduler.create(t.workerUrl, { schema: t.schema, releasePairsPerRound: 4 })
    // Other tests' paused pairs hold jobs too; the rotation reaches every pair within a few rounds.
    for (let i = 0; i < 6 && (await states('rot')).held; i++) await s.runOnce()
    expect(await states('rot')).toEqual({ pending: 6 })
    await s.close()
  })
})
