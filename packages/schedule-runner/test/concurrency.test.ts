import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import pg from 'pg'
import { createIsolatedDatabase, waitFor, type IsolatedDatabase } from '@pgqueue/testing'
import { migrate } from '@pgqueue/core'
import { ScheduleRunner, type ScheduleRunnerOptions } from '@pgqueue/schedule-runner'
import { ManualClock, dueCount, insertSchedules, jobCounts, jobTotal } from './helpers.js'

let t: IsolatedDatabase
const pools: pg.Pool[] = []
const runners: ScheduleRunner[] = []

function workerPool(applicationName: string, max = 2): pg.Pool {
  const p = new pg.Pool({ connectionString: t.workerUrl, max, application_name: applicationName })
  p.on('error', () => {})
  pools.push(p)
  return p
}

function runner(target: pg.Pool | string, options: ScheduleRunnerOptions = {}): ScheduleRunner {
  const r = ScheduleRunner.create(target, { schema: t.schema, ...options })
  r.on('error', () => {})
  runners.push(r)
  return r
}

beforeAll(async () => {
  t = await createIsolatedDatabase('schedconc')
  await migrate(t.adminUrl, t.schemaOptions)
})
afterAll(async () => {
  for (const r of runners) await r.close()
  for (const p of pools) await p.end()
  await t?.cleanup()
})
beforeEach(async () => {
  await t.admin.query(`truncate "${t.schema}".schedules, "${t.schema}".jobs, "${t.schema}".queue_clocks`)
})

const T0 = new Date('2026-06-01T00:00:00.000Z')

describe('ScheduleRunner: several runners', () => {
  it('three runners fire every due time of 3,000 schedules exactly once, over 5 rounds', async () => {
    const tenants = 30
    const perTenant = 100
    const rows = Array.from({ length: tenants }, (_, ti) =>
      Array.from({ length: perTenant }, (_, i) => ({ tenant: `t${ti}`, key: `k${i}`, everyMs: 60_000, anchorAt: T0, nextRunAt: T0 })),
    ).flat()
    const ids = await insertSchedules(t, rows)
    await t.admin.query(`analyze "${t.schema}".schedules`)
    const clock = new ManualClock(T0)
    // Small batches so the three runners interleave and contend for the same tenants.
    const rs = [1, 2, 3].map((n) => runner(workerPool(`sr-exactly-once-${n}`), { clock, batchSize: 150, tenantQuantum: 5, pollMs: 20 }))
    const firedBy = new Map<ScheduleRunner, number>()
    for (const r of rs) r.on('fired', () => firedBy.set(r, (firedBy.get(r) ?? 0) + 1))
    await Promise.all(rs.map((r) => r.start()))
    const rounds = 5
    for (let round = 0; round < rounds; round++) {
      for (const r of rs) r.wake()
      await waitFor(async () => (await dueCount(t.admin, t.schema, clock.now())) === 0, { timeoutMs: 30_000, message: `round ${round} drained` })
      clock.advance(60_000)
    }
    await Promise.all(rs.map((r) => r.stop()))
    const counts = await jobCounts(t.admin, t.schema)
    expect(counts.size).toBe(ids.length)
    const wrong = ids.filter((id) => counts.get(id) !== rounds)
    expect(wrong).toEqual([])
    expect(await jobTotal(t.admin, t.schema)).toBe(ids.length * rounds)
    // Every schedule still sits on its grid.
    const { rows: off } = await t.admin.query(
      `select count(*)::int as n from "${t.schema}".schedules where next_run_at <> $1::timestamptz`,
      [new Date(T0.getTime() + rounds * 60_000).toISOString()],
    )
    expect(off[0].n).toBe(0)
    // The work really was shared.
    for (const r of rs) expect(firedBy.get(r) ?? 0).toBeGreaterThan(0)
  })

  it('a runner killed mid-batch loses no fire and duplicates none', async () => {
    // Nine tenants, 20 due schedules each. The admin holds a SHARE lock on schedules: the claim
    // (FOR UPDATE) passes, the push of every tenant's jobs too, and the batch blocks at the advance,
    // with all its jobs written in the same transaction. Then its connection is killed.
    const rows = Array.from({ length: 9 }, (_, ti) =>
      Array.from({ length: 20 }, (_, i) => ({ tenant: `t${ti + 1}`, key: `k${i}`, queue: 'q', everyMs: 60_000, anchorAt: T0, nextRunAt: T0 })),
    ).flat()
    const ids = await insertSchedules(t, rows)
    const blocker = await t.admin.connect()
    try {
      await blocker.query('begin')
      await blocker.query(`lock table "${t.schema}".schedules in share mode`)
      const clock = new ManualClock(new Date(T0.getTime() + 1000))
      const victim = runner(workerPool('sr-victim', 1), { clock, batchSize: 1000, lockTimeoutMs: 60_000 })
      const errors: Error[] = []
      victim.on('error', (e) => errors.push(e))
      const inFlight = victim.runOnce().catch((e: Error) => e)
      await waitFor(
        async () => {
          const { rows: w } = await t.admin.query(
            `select 1 from pg_stat_activity where application_name = 'sr-victim' and wait_event_type = 'Lock' and state = 'active'
                and query ilike '%update%schedules%'`,
          )
          return w.length > 0
        },
        { message: 'victim blocked at the advance, after its push' },
      )
      const { rows: killed } = await t.admin.query(`select pg_terminate_backend(pid) as ok from pg_stat_activity where application_name = 'sr-victim'`)
      expect(killed.length).toBeGreaterThan(0)
      expect(await inFlight).toBeInstanceOf(Error)
      // Nothing of the victim's batch survived: no jobs, every schedule still due.
      expect(await jobTotal(t.admin, t.schema)).toBe(0)
      expect(await dueCount(t.admin, t.schema, clock.now())).toBe(ids.length)
      await blocker.query('commit')

      // Another runner, and the victim itself (it reconnects), now finish the work exactly once.
      const other = runner(workerPool('sr-survivor'), { clock, batchSize: 50, tenantQuantum: 5 })
      const results = await Promise.all([other.runOnce(), victim.runOnce(), other.runOnce(), victim.runOnce()])
      while ((await other.runOnce()).claimed > 0);
      expect(results.reduce((n, r) => n + r.fired, 0)).toBeGreaterThan(0)
      const counts = await jobCounts(t.admin, t.schema)
      expect(ids.filter((id) => counts.get(id) !== 1)).toEqual([])
      expect(await jobTotal(t.admin, t.schema)).toBe(ids.length)
    } finally {
      await blocker.query('rollback').catch(() => {})
      blocker.release()
    }
  })
})

describe('ScheduleRunner: intervals do not drift', () => {
  it('stays on the anchor grid over 500 runs however late the runner is (injected clock)', async () => {
    const every = 1_000
    const anchor = new Date(T0.getTime() + 123)
    const [id] = await insertSchedules(t, [{ tenant: 'acme', key: 'k', everyMs: every, anchorAt: anchor, nextRunAt: anchor }])
    const clock = new ManualClock(anchor)
    const r = runner(workerPool('sr-drift-clock', 1), { clock })
    const dues: number[] = []
    r.on('fired', (f) => dues.push(f.dueAt.getTime()))
    let rnd = 42
    const random = () => ((rnd = (rnd * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
    for (let k = 0; k < 500; k++) {
      // The runner reaches each due time up to 900 ms late (less than one period).
      clock.set(new Date(anchor.getTime() + k * every + Math.floor(random() * 900)))
      await r.runOnce()
    }
    expect(dues).toHaveLength(500)
    expect(dues.every((d, k) => d === anchor.getTime() + k * every)).toBe(true)
    const { rows } = await t.admin.query(`select next_run_at from "${t.schema}".schedules where id = $1`, [id])
    expect(rows[0].next_run_at.getTime()).toBe(anchor.getTime() + 500 * every)
  })

  it('in real time, a 1 s interval fires on its grid, each job created soon after its due time', async () => {
    const every = 1_000
    const anchor = new Date(Math.ceil(Date.now() / 1000) * 1000 + 500)
    const [id] = await insertSchedules(t, [{ tenant: 'acme', key: 'real', everyMs: every, anchorAt: anchor, nextRunAt: anchor }])
    const r = runner(workerPool('sr-drift-real', 1), { pollMs: 50 })
    const fired: Array<{ due: number; at: number }> = []
    r.on('fired', (f) => fired.push({ due: f.dueAt.getTime(), at: Date.now() }))
    await r.start()
    await waitFor(() => fired.length >= 4, { timeoutMs: 10_000, message: '4 fires' })
    await r.stop()
    const first = fired[0]!.due
    expect(first).toBe(anchor.getTime())
    fired.forEach((f, k) => {
      expect(f.due).toBe(first + k * every)
      expect(f.at - f.due).toBeGreaterThanOrEqual(0)
      expect(f.at - f.due).toBeLessThan(900)
    })
    const counts = await jobCounts(t.admin, t.schema)
    expect(counts.get(id!)).toBe(fired.length)
  })
})

describe('ScheduleRunner: lifecycle', () => {
  it('start() fires due schedules in the background; stop() waits for the batch and leaves a passed pool open', async () => {
    const pool = workerPool('sr-lifecycle')
    await insertSchedules(t, [{ tenant: 'acme', key: 'k', everyMs: 3_600_000, nextRunAt: new Date(Date.now() - 10) }])
    const r = runner(pool, { pollMs: 20 })
    const events: string[] = []
    r.on('started', () => events.push('started'))
    r.on('batch', () => events.push('batch'))
    r.on('stopped', () => events.push('stopped'))
    await r.start()
    await waitFor(async () => (await jobTotal(t.admin, t.schema)) === 1)
    await r.stop()
    expect(events[0]).toBe('started')
    expect(events).toContain('batch')
    expect(events.at(-1)).toBe('stopped')
    expect((await pool.query('select 1 as x')).rows[0].x).toBe(1)
    // Restartable, and a URL target opens and closes its own pool.
    await r.start()
    await r.stop()
    const byUrl = runner(t.workerUrl, { pollMs: 20 })
    await byUrl.start()
    await byUrl.close()
  })

  it('refuses to start before initialize(), saying so, and can start once it ran', async () => {
    const r = runner(workerPool('sr-setup'), { pollMs: 20, schema: 'no_such_schema' })
    await expect(r.start()).rejects.toThrow(/ScheduleRunner: pgqueue is not installed in schema "no_such_schema" .* run pgqueue.initialize/)
    expect(r.isRunning).toBe(false)
  })

  it('keeps running through a database error and reports it as an event', async () => {
    const r = runner(workerPool('sr-errors'), { pollMs: 20 })
    const errors: Error[] = []
    r.on('error', (e) => errors.push(e))
    await r.start()
    // The schedules table vanishes under the running loop (renamed by the owner), then comes back.
    await t.admin.query(`alter table "${t.schema}".schedules rename to schedules_away`)
    try {
      await waitFor(() => errors.length >= 2, { message: 'two errors reported' })
      expect(r.isRunning).toBe(true)
    } finally {
      await t.admin.query(`alter table "${t.schema}".schedules_away rename to schedules`)
    }
    await r.stop()
  })
})
