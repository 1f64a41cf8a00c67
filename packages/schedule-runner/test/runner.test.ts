import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import pg from 'pg'
import { createIsolatedDatabase, type IsolatedDatabase } from '@pgqueue/testing'
import { migrate, PgQueueValidationError, DEFAULT_RETRY_POLICY } from '@pgqueue/core'
import { ScheduleRunner, type ScheduleInvalid, type ScheduleRunnerOptions } from '@pgqueue/schedule-runner'
import { ManualClock, insertSchedules, jobCounts, jobTotal } from './helpers.js'

let t: IsolatedDatabase
let pool: pg.Pool
const runners: ScheduleRunner[] = []

function runner(clock: ManualClock, options: ScheduleRunnerOptions = {}): ScheduleRunner {
  const r = ScheduleRunner.create(pool, { schema: t.schema, clock, ...options })
  runners.push(r)
  return r
}

beforeAll(async () => {
  t = await createIsolatedDatabase('schedrun')
  await migrate(t.adminUrl, t.schemaOptions)
  pool = new pg.Pool({ connectionString: t.workerUrl, max: 3 })
  pool.on('error', () => {})
})
afterAll(async () => {
  for (const r of runners) await r.close()
  await pool?.end()
  await t?.cleanup()
})
beforeEach(async () => {
  await t.admin.query(`truncate "${t.schema}".schedules, "${t.schema}".jobs, "${t.schema}".queues, "${t.schema}".queue_clocks`)
})

async function schedule(id: string) {
  const { rows } = await t.admin.query(`select * from "${t.schema}".schedules where id = $1`, [id])
  return rows[0]
}

const T0 = new Date('2026-06-01T00:00:00.000Z')

describe('ScheduleRunner: firing', () => {
  it('pushes the template as a due job with the schedule id and advances on the interval grid', async () => {
    const policy = { type: 'constant', delayMs: 1000, maxAttempts: 7 }
    const [id] = await insertSchedules(t, [
      {
        tenant: 'acme',
        key: 'k1',
        queue: 'reports',
        type: 'build',
        everyMs: 60_000,
        anchorAt: T0,
        nextRunAt: new Date(T0.getTime() + 60_000),
        payload: Buffer.from('hello'),
        payloadType: 'text/plain',
        target: { to: 'x@y.z', n: 1 },
        priority: 3,
        retryPolicy: policy,
      },
    ])
    const clock = new ManualClock(new Date(T0.getTime() + 60_500))
    const r = runner(clock)
    const res = await r.runOnce()
    expect(res).toMatchObject({ claimed: 1, fired: 1, skipped: 0, invalid: 0, tenants: 1 })
    const { rows: jobs } = await t.admin.query(`select * from "${t.schema}".jobs`)
    expect(jobs).toHaveLength(1)
    expect(jobs[0]).toMatchObject({
      tenant_id: 'acme',
      queue: 'reports',
      type: 'build',
      key: null,
      state: 'pending',
      priority: 3,
      payload: Buffer.from('hello'),
      payload_type: 'text/plain',
      target: { to: 'x@y.z', n: 1 },
      max_attempts: 7,
      retry_policy: policy,
      schedule_id: id,
    })
    const s = await schedule(id!)
    expect(s.next_run_at.toISOString()).toBe(new Date(T0.getTime() + 120_000).toISOString())
    expect(s.last_run_at.toISOString()).toBe(clock.now().toISOString())
    // Not due again until the next grid point.
    expect((await r.runOnce()).claimed).toBe(0)
    clock.set(new Date(T0.getTime() + 120_000))
    expect((await r.runOnce()).fired).toBe(1)
    expect(await jobTotal(t.admin, t.schema)).toBe(2)
  })

  it("takes max_attempts from the queue's policy when the schedule has none, else the default", async () => {
    await t.admin.query(`insert into "${t.schema}".queues (tenant_id, queue, retry_policy) values ('acme', 'configured', $1)`, [
      JSON.stringify({ type: 'constant', delayMs: 10, maxAttempts: 2 }),
    ])
    await insertSchedules(t, [
      { tenant: 'acme', key: 'a', queue: 'configured', everyMs: 60_000, nextRunAt: T0 },
      { tenant: 'acme', key: 'b', queue: 'plain', everyMs: 60_000, nextRunAt: T0 },
    ])
    await runner(new ManualClock(T0)).runOnce()
    const { rows } = await t.admin.query(`select queue, max_attempts, retry_policy from "${t.schema}".jobs order by queue`)
    expect(rows).toEqual([
      { queue: 'configured', max_attempts: 2, retry_policy: null },
      { queue: 'plain', max_attempts: DEFAULT_RETRY_POLICY.maxAttempts, retry_policy: null },
    ])
  })

  it('never fires paused schedules, and fires once on resume', async () => {
    const [paused, active] = await insertSchedules(t, [
      { tenant: 'acme', key: 'paused', everyMs: 60_000, anchorAt: T0, nextRunAt: T0, paused: true },
      { tenant: 'acme', key: 'active', everyMs: 60_000, anchorAt: T0, nextRunAt: T0 },
    ])
    const clock = new ManualClock(T0)
    const r = runner(clock)
    for (let i = 0; i < 5; i++) {
      await r.runOnce()
      clock.advance(60_000)
    }
    let counts = await jobCounts(t.admin, t.schema)
    expect(counts.get(paused!)).toBeUndefined()
    expect(counts.get(active!)).toBe(5)
    expect((await schedule(paused!)).next_run_at.toISOString()).toBe(T0.toISOString())

    // Resume 5 minutes after it was due: the missed runs collapse into one (fire_once), then the grid continues.
    await t.admin.query(`update "${t.schema}".schedules set paused = false where id = $1`, [paused])
    await r.runOnce()
    counts = await jobCounts(t.admin, t.schema)
    expect(counts.get(paused!)).toBe(2 - 1)
    expect((await schedule(paused!)).next_run_at.toISOString()).toBe(new Date(clock.now().getTime() + 60_000).toISOString())
  })

  it('rejects bad options at construction with a typed error', () => {
    expect(() => ScheduleRunner.create(pool, { batchSize: 0 })).toThrow(PgQueueValidationError)
    expect(() => ScheduleRunner.create(pool, { tenantQuantum: 5000, batchSize: 100 })).toThrow(/tenantQuantum/)
    expect(() => ScheduleRunner.create(pool, { schema: 'Bad-Name' })).toThrow(/schema/)
    expect(() => ScheduleRunner.create('' as string)).toThrow(PgQueueValidationError)
  })
})

describe('ScheduleRunner: missed runs after downtime', () => {
  it("'fire_once' fires one job for all missed runs, then continues from now on the grid", async () => {
    const [interval, daily] = await insertSchedules(t, [
      { tenant: 'acme', key: 'every-min', everyMs: 60_000, anchorAt: T0, nextRunAt: T0 },
      { tenant: 'acme', key: 'daily', cron: '0 3 * * *', timezone: 'Europe/Warsaw', nextRunAt: new Date('2026-06-01T01:00:00Z') },
    ])
    // Down for 3 days and 10.5 minutes.
    const clock = new ManualClock(new Date(T0.getTime() + 3 * 86_400_000 + 630_000))
    const fired: boolean[] = []
    const r = runner(clock)
    r.on('fired', (f) => fired.push(f.missed))
    const res = await r.runOnce()
    expect(res).toMatchObject({ claimed: 2, fired: 2, skipped: 0 })
    expect(fired).toEqual([true, true])
    expect((await jobCounts(t.admin, t.schema)).get(interval!)).toBe(1)
    expect((await jobCounts(t.admin, t.schema)).get(daily!)).toBe(1)
    expect((await schedule(interval!)).next_run_at.toISOString()).toBe(new Date(T0.getTime() + 3 * 86_400_000 + 660_000).toISOString())
    // "now" is 02:10:30 in Warsaw (CEST, UTC+2) on June 4: next is 03:00 that day.
    expect((await schedule(daily!)).next_run_at.toISOString()).toBe('2026-06-04T01:00:00.000Z')
    expect((await r.runOnce()).claimed).toBe(0)
  })

  it("'skip' fires nothing for missed runs and schedules the next future one", async () => {
    const [interval, daily] = await insertSchedules(t, [
      { tenant: 'acme', key: 'every-min', everyMs: 60_000, anchorAt: T0, nextRunAt: T0, missedPolicy: 'skip' },
      { tenant: 'acme', key: 'daily', cron: '0 3 * * *', timezone: 'Europe/Warsaw', nextRunAt: new Date('2026-06-01T01:00:00Z'), missedPolicy: 'skip' },
    ])
    const clock = new ManualClock(new Date(T0.getTime() + 3 * 86_400_000 + 630_000))
    const r = runner(clock)
    const res = await r.runOnce()
    expect(res).toMatchObject({ claimed: 2, fired: 0, skipped: 2 })
    expect(await jobTotal(t.admin, t.schema)).toBe(0)
    expect((await schedule(interval!)).next_run_at.toISOString()).toBe(new Date(T0.getTime() + 3 * 86_400_000 + 660_000).toISOString())
    expect((await schedule(daily!)).next_run_at.toISOString()).toBe('2026-06-04T01:00:00.000Z')
    expect((await schedule(daily!)).last_run_at).toBeNull()
  })

  it("'skip' still fires a due time reached within the grace, and skips one reached after it", async () => {
    const [onTime, late] = await insertSchedules(t, [
      { tenant: 'acme', key: 'on-time', cron: '0 3 * * *', timezone: 'UTC', nextRunAt: new Date('2026-06-01T03:00:00Z'), missedPolicy: 'skip' },
      { tenant: 'acme', key: 'late', cron: '0 1 * * *', timezone: 'UTC', nextRunAt: new Date('2026-06-01T01:00:00Z'), missedPolicy: 'skip' },
    ])
    // 30 s after 03:00: 'on-time' is 30 s late (within the 60 s grace), 'late' is 2 h late.
    const r = runner(new ManualClock(new Date('2026-06-01T03:00:30Z')))
    expect(await r.runOnce()).toMatchObject({ fired: 1, skipped: 1 })
    const counts = await jobCounts(t.admin, t.schema)
    expect(counts.get(onTime!)).toBe(1)
    expect(counts.get(late!)).toBeUndefined()
    expect((await schedule(late!)).next_run_at.toISOString()).toBe('2026-06-02T01:00:00.000Z')
  })
})

describe('ScheduleRunner: bad rows', () => {
  it('defers a row it cannot read, reports it, and fires the others', async () => {
    const [badCron, badZone, badPolicy, good] = await insertSchedules(t, [
      { tenant: 'acme', key: 'bad-cron', cron: 'not a cron', timezone: 'UTC', nextRunAt: T0 },
      { tenant: 'acme', key: 'bad-zone', cron: '0 3 * * *', timezone: 'Mars/Olympus_Mons', nextRunAt: T0 },
      { tenant: 'beta', key: 'bad-policy', everyMs: 1000, nextRunAt: T0, retryPolicy: { type: 'sometimes' } },
      { tenant: 'beta', key: 'good', everyMs: 1000, nextRunAt: T0 },
    ])
    const clock = new ManualClock(T0)
    const r = runner(clock, { invalidRetryMs: 600_000 })
    const invalid: ScheduleInvalid[] = []
    r.on('invalid', (i) => invalid.push(i))
    const res = await r.runOnce()
    expect(res).toMatchObject({ claimed: 4, fired: 1, invalid: 3 })
    expect(invalid.map((i) => i.key).sort()).toEqual(['bad-cron', 'bad-policy', 'bad-zone'])
    expect(invalid.find((i) => i.key === 'bad-zone')!.error).toBeInstanceOf(PgQueueValidationError)
    expect((await jobCounts(t.admin, t.schema)).get(good!)).toBe(1)
    for (const id of [badCron, badZone, badPolicy]) {
      expect((await schedule(id!)).next_run_at.toISOString()).toBe(new Date(T0.getTime() + 600_000).toISOString())
    }
    // The runner keeps going: the good one fires next second, the bad ones wait for their retry time.
    clock.advance(1000)
    expect(await r.runOnce()).toMatchObject({ claimed: 1, fired: 1, invalid: 0 })
  })
})

describe('ScheduleRunner: jobs the database refuses', () => {
  it('defers only the schedule whose job is refused (a constraint on jobs) and fires the rest of its batch', async () => {
    // Stands in for any deterministic refusal of one job: a deployment's own constraint or trigger.
    await t.admin.query(`alter table "${t.schema}".jobs add constraint no_poison check (type <> 'poison')`)
    try {
      const [poison, a, b] = await insertSchedules(t, [
        { tenant: 'acme', key: 'poison', type: 'poison', everyMs: 1000, nextRunAt: T0 },
        { tenant: 'acme', key: 'a', everyMs: 1000, nextRunAt: T0 },
        { tenant: 'beta', key: 'b', everyMs: 1000, nextRunAt: T0 },
      ])
      const clock = new ManualClock(T0)
      const r = runner(clock, { invalidRetryMs: 600_000 })
      const invalid: ScheduleInvalid[] = []
      r.on('invalid', (i) => invalid.push(i))
      expect(await r.runOnce()).toMatchObject({ claimed: 3, fired: 2, invalid: 1 })
      expect(invalid.map((i) => i.key)).toEqual(['poison'])
      expect((invalid[0]!.error as Error & { code?: string }).code).toBe('23514')
      const counts = await jobCounts(t.admin, t.schema)
      expect([counts.get(poison!) ?? 0, counts.get(a!), counts.get(b!)]).toEqual([0, 1, 1])
      expect((await schedule(poison!)).next_run_at.toISOString()).toBe(new Date(T0.getTime() + 600_000).toISOString())
      expect((await schedule(poison!)).last_run_at).toBeNull()
      expect((await schedule(a!)).last_run_at.toISOString()).toBe(T0.toISOString())
      clock.advance(1000)
      expect(await r.runOnce()).toMatchObject({ claimed: 2, fired: 2, invalid: 0 })
    } finally {
      await t.admin.query(`alter table "${t.schema}".jobs drop constraint no_poison`)
    }
  })
})

describe("ScheduleRunner: a tenant's open transaction", () => {
  it('defers only the schedules whose fair clock another transaction holds, without waiting, and fires them once it ends', async () => {
    const [held, sameTenantOtherQueue, other] = await insertSchedules(t, [
      { tenant: 'acme', key: 'held', queue: 'busy', everyMs: 1000, nextRunAt: T0 },
      { tenant: 'acme', key: 'free', queue: 'quiet', everyMs: 1000, nextRunAt: T0 },
      { tenant: 'beta', key: 'b', queue: 'busy', everyMs: 1000, nextRunAt: T0 },
    ])
    // Stands in for a producer's push into acme/busy left uncommitted: it holds that clock row.
    await t.admin.query(`insert into "${t.schema}".queue_clocks (tenant_id, queue, last_vt) values ('acme', 'busy', 0)`)
    const holder = await t.admin.connect()
    try {
      await holder.query('begin')
      await holder.query(`select 1 from "${t.schema}".queue_clocks where tenant_id = 'acme' and queue = 'busy' for update`)
      const clock = new ManualClock(T0)
      const r = runner(clock, { lockTimeoutMs: 60_000 })
      const started = performance.now()
      expect(await r.runOnce()).toMatchObject({ claimed: 3, fired: 2, deferred: 1 })
      // Never waited on the lock: only the few short looks before deferring.
      expect(performance.now() - started).toBeLessThan(1_000)
      let counts = await jobCounts(t.admin, t.schema)
      expect([counts.get(held!) ?? 0, counts.get(sameTenantOtherQueue!), counts.get(other!)]).toEqual([0, 1, 1])
      expect((await schedule(held!)).next_run_at.toISOString()).toBe(T0.toISOString())
      await holder.query('commit')
      expect(await r.runOnce()).toMatchObject({ claimed: 1, fired: 1, deferred: 0 })
      counts = await jobCounts(t.admin, t.schema)
      expect(counts.get(held!)).toBe(1)
    } finally {
      await holder.query('rollback').catch(() => {})
      holder.release()
    }
  })
})

describe('ScheduleRunner: daylight saving time', () => {
  /** Fires a schedule by moving the clock to each next_run_at in turn; returns the due times that fired. */
  async function fireSeries(id: string, runs: number, clock: ManualClock, r: ScheduleRunner): Promise<string[]> {
    const dues: string[] = []
    const onFired = (f: { scheduleId: string; dueAt: Date }) => f.scheduleId === id && dues.push(f.dueAt.toISOString())
    r.on('fired', onFired)
    for (let i = 0; i < runs; i++) {
      clock.set((await schedule(id)).next_run_at)
      await r.runOnce()
      expect(dues).toHaveLength(i + 1)
    }
    r.off('fired', onFired)
    return dues
  }

  it('a 02:30 daily cron in New York fires once on the spring-forward day, at 03:30 EDT', async () => {
    // 2026-03-08: 02:00 EST jumps to 03:00 EDT, so 02:30 does not exist that day.
    const [id] = await insertSchedules(t, [
      { tenant: 'acme', key: 'ny-0230', cron: '30 2 * * *', timezone: 'America/New_York', nextRunAt: new Date('2026-03-07T07:30:00Z') },
    ])
    const clock = new ManualClock(T0)
    const r = runner(clock)
    expect(await fireSeries(id!, 4, clock, r)).toEqual([
      '2026-03-07T07:30:00.000Z', // 02:30 EST
      '2026-03-08T07:30:00.000Z', // 03:30 EDT: the skipped 02:30, shifted by the one-hour gap
      '2026-03-09T06:30:00.000Z', // 02:30 EDT
      '2026-03-10T06:30:00.000Z',
    ])
  })

  it('a 01:30 daily cron in New York fires once on the fall-back day, at the first 01:30 (EDT)', async () => {
    // 2026-11-01: 02:00 EDT falls back to 01:00 EST, so 01:30 happens twice (05:30Z and 06:30Z).
    const [id] = await insertSchedules(t, [
      { tenant: 'acme', key: 'ny-0130', cron: '30 1 * * *', timezone: 'America/New_York', nextRunAt: new Date('2026-10-31T05:30:00Z') },
    ])
    const clock = new ManualClock(T0)
    const r = runner(clock)
    expect(await fireSeries(id!, 2, clock, r)).toEqual(['2026-10-31T05:30:00.000Z', '2026-11-01T05:30:00.000Z'])
    // The second 01:30 (EST) comes and goes without a fire.
    clock.set('2026-11-01T06:30:30Z')
    expect((await r.runOnce()).claimed).toBe(0)
    expect(await fireSeries(id!, 2, clock, r)).toEqual(['2026-11-02T06:30:00.000Z', '2026-11-03T06:30:00.000Z'])
    expect((await jobCounts(t.admin, t.schema)).get(id!)).toBe(4)
  })

  it('Europe/Warsaw: a 02:30 daily cron fires once on both change days', async () => {
    // 2026-03-29: 02:00 CET jumps to 03:00 CEST. 2026-10-25: 03:00 CEST falls back to 02:00 CET, so
    // 02:30 happens twice; it fires at the first one (CEST).
    const [spring, fall] = await insertSchedules(t, [
      { tenant: 'acme', key: 'waw-spring', cron: '30 2 * * *', timezone: 'Europe/Warsaw', nextRunAt: new Date('2026-03-28T01:30:00Z') },
      { tenant: 'acme', key: 'waw-fall', cron: '30 2 * * *', timezone: 'Europe/Warsaw', nextRunAt: new Date('2026-10-24T00:30:00Z') },
    ])
    const clock = new ManualClock(T0)
    const r = runner(clock)
    expect(await fireSeries(spring!, 3, clock, r)).toEqual(['2026-03-28T01:30:00.000Z', '2026-03-29T01:30:00.000Z', '2026-03-30T00:30:00.000Z'])
    expect(await fireSeries(fall!, 3, clock, r)).toEqual(['2026-10-24T00:30:00.000Z', '2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z'])
    clock.set('2026-10-25T01:30:30Z') // the second 02:30 (CET)
    expect((await r.runOnce()).claimed).toBe(0)
  })

  it('Europe/Warsaw: an hourly cron fires every real hour through the fall-back', async () => {
    const [hourly] = await insertSchedules(t, [
      { tenant: 'acme', key: 'waw-hourly', cron: '0 * * * *', timezone: 'Europe/Warsaw', nextRunAt: new Date('2026-10-24T23:00:00Z') },
    ])
    const clock = new ManualClock(T0)
    const r = runner(clock)
    // 01:00 CEST .. 03:00 CET on 2026-10-25: 02:00 local happens twice, and both are real hours.
    expect(await fireSeries(hourly!, 5, clock, r)).toEqual([
      '2026-10-24T23:00:00.000Z',
      '2026-10-25T00:00:00.000Z',
      '2026-10-25T01:00:00.000Z',
      '2026-10-25T02:00:00.000Z',
      '2026-10-25T03:00:00.000Z',
    ])
  })
})

describe('ScheduleRunner: fairness across tenants', () => {
  it("serves a tenant with thousands due and others with a few in the same first batch", async () => {
    const big = Array.from({ length: 5000 }, (_, i) => ({ tenant: 'aaa-big', key: `b${i}`, everyMs: 3_600_000, anchorAt: T0, nextRunAt: T0 }))
    const small = ['mid-1', 'zzz-2', 'zzz-3'].flatMap((tenant) =>
      Array.from({ length: 3 }, (_, i) => ({ tenant, key: `s${i}`, everyMs: 3_600_000, anchorAt: T0, nextRunAt: T0 })),
    )
    await insertSchedules(t, [...big, ...small])
    await t.admin.query(`analyze "${t.schema}".schedules`)
    const r = runner(new ManualClock(new Date(T0.getTime() + 1000)), { batchSize: 200, tenantQuantum: 10 })
    const first = await r.runOnce()
    expect(first).toMatchObject({ tenants: 4, claimed: 50 + 9, fired: 59 })
    const { rows } = await t.admin.query<{ tenant_id: string; n: number }>(
      `select tenant_id, count(*)::int as n from "${t.schema}".jobs group by 1 order by 1`,
    )
    expect(rows).toEqual([
      { tenant_id: 'aaa-big', n: 50 },
      { tenant_id: 'mid-1', n: 3 },
      { tenant_id: 'zzz-2', n: 3 },
      { tenant_id: 'zzz-3', n: 3 },
    ])
    // Alone, the big tenant then fills whole batches.
    expect(await r.runOnce()).toMatchObject({ tenants: 1, claimed: 200 })
    while ((await r.runOnce()).claimed > 0);
    expect(await jobTotal(t.admin, t.schema)).toBe(5009)
  })

  it('rotates over more due tenants than one batch holds, so none waits for the others to drain', async () => {
    // 30 tenants with 50 due each, 5 tenants per batch: every tenant is served within 6 batches.
    const rows = Array.from({ length: 30 }, (_, ti) =>
      Array.from({ length: 50 }, (_, i) => ({ tenant: `t${String(ti).padStart(2, '0')}`, key: `k${i}`, everyMs: 3_600_000, anchorAt: T0, nextRunAt: T0 })),
    ).flat()
    await insertSchedules(t, rows)
    const r = runner(new ManualClock(new Date(T0.getTime() + 1000)), { batchSize: 50, tenantQuantum: 10 })
    const served = new Set<string>()
    r.on('fired', (f) => served.add(f.tenantId))
    for (let i = 0; i < 6; i++) expect(await r.runOnce()).toMatchObject({ tenants: 5, claimed: 50 })
    expect(served.size).toBe(30)
  })
})
