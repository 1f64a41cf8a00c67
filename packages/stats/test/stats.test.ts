import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import pg from 'pg'
import { createIsolatedDatabase, type IsolatedDatabase } from '@pgqueue/testing'
import { migrate, uuidv7, PgQueueValidationError, PgQueueTenantRequiredError } from '@pgqueue/core/internal'
import { Stats } from '@pgqueue/stats'

let t: IsolatedDatabase
let asUser: Stats
let asWorker: Stats
let workerPool: pg.Pool

/** Live jobs as admin: [tenant, queue, state, run_at offset (sql interval from now), attempt]. */
async function jobs(rows: [string, string, string, string, number][]): Promise<void> {
  for (const [tenant, queue, state, offset, attempt] of rows) {
    await t.admin.query(
      `insert into "${t.schema}".jobs (tenant_id, id, queue, type, state, vt, run_at, attempt, lease_owner, lease_expires_at)
       values ($1, $2, $3, 't', $4, case when $4 = 'pending' then 1 end, now() + $5::interval, $6,
               case when $4 = 'running' then 'w' end, case when $4 = 'running' then now() + interval '1 minute' end)`,
      [tenant, uuidv7(), queue, state, offset, attempt],
    )
  }
}

/** History as admin: [tenant, queue, state, finished_at (sql expression), wait ms, run ms] (null: never started). */
async function history(rows: [string, string, string, string, number | null, number | null][]): Promise<void> {
  for (const [tenant, queue, state, finished, waitMs, runMs] of rows) {
    await t.admin.query(
      `with f as (select (${finished})::timestamptz as f)
       insert into "${t.schema}".job_history (tenant_id, id, queue, type, state, attempt, max_attempts, created_at, run_at, started_at, finished_at)
       select $1, $2, $3, 't', $4, 1, 1, f - interval '1 hour',
              case when $6::int is null then f - interval '1 minute' else f - make_interval(secs => ($5::int + $6::int) / 1000.0) end,
              case when $6::int is null then null else f - make_interval(secs => $6::int / 1000.0) end, f
         from f`,
      [tenant, uuidv7(), queue, state, waitMs, runMs],
    )
  }
}

beforeAll(async () => {
  t = await createIsolatedDatabase('stats')
  await migrate(t.adminUrl, t.schemaOptions)
  await jobs([
    ['acme', 'emails', 'pending', '-10 minutes', 0],
    ['acme', 'emails', 'pending', '-1 minute', 1],
    ['acme', 'emails', 'held', '-5 minutes', 0],
    ['acme', 'emails', 'scheduled', '-1 minute', 0],
    ['acme', 'emails', 'scheduled', '1 hour', 0],
    ['acme', 'emails', 'scheduled', '2 hours', 2],
    ['acme', 'emails', 'running', '-3 minutes', 1],
    ['acme', 'reports', 'running', '-1 minute', 1],
    // A flow job waiting for its parents: counted as waiting only.
    ['acme', 'reports', 'waiting', '-1 minute', 0],
    ...Array.from({ length: 5 }, (): [string, string, string, string, number] => ['other', 'emails', 'pending', '-1 day', 0]),
  ])
  await history([
    ['acme', 'emails', 'completed', `now() - interval '10 minutes'`, 1000, 10_000],
    ['acme', 'emails', 'completed', `now() - interval '20 minutes'`, 2000, 20_000],
    ['acme', 'emails', 'completed', `now() - interval '30 minutes'`, 3000, 30_000],
    ['acme', 'emails', 'failed', `now() - interval '2 hours'`, null, null],
    ['acme', 'emails', 'failed', `now() - interval '30 hours'`, null, null],
    ['acme', 'emails', 'cancelled', `now() - interval '3 hours'`, null, null],
    ['acme', 'emails', 'completed', `now() - interval '40 days'`, 1, 1],
    ['other', 'emails', 'completed', `now() - interval '5 minutes'`, 100_000, 100_000],
    ['other', 'emails', 'failed', `now() - interval '1 minute'`, 100_000, 100_000],
    // Fixed times for histograms.
    ['acme', 'hist', 'completed', `'2020-01-01T10:05:00Z'`, 0, 0],
    ['acme', 'hist', 'completed', `'2020-01-01T10:10:00Z'`, 0, 0],
    ['acme', 'hist', 'failed', `'2020-01-01T11:59:59Z'`, 0, 0],
    ['acme', 'hist', 'cancelled', `'2020-01-01T12:00:00Z'`, null, null],
    ['acme', 'hist', 'completed', `'2020-01-01T12:30:00Z'`, 0, 0],
    ['other', 'hist', 'completed', `'2020-01-01T10:30:00Z'`, 0, 0],
  ])
  await t.admin.query(
    `insert into "${t.schema}".schedules (tenant_id, key, queue, type, every_ms, paused, next_run_at, last_run_at) values
       ('acme', 'a', 'emails', 't', 60000, false, '2030-01-01T00:05:00Z', '2030-01-01T00:04:00Z'),
       ('acme', 'b', 'emails', 't', 60000, true,  '2030-01-01T00:01:00Z', '2030-01-01T00:06:00Z'),
       ('acme', 'c', 'reports', 't', 60000, false, '2030-01-01T00:03:00Z', null),
       ('other', 'a', 'emails', 't', 60000, false, '2029-01-01T00:00:00Z', '2031-01-01T00:00:00Z')`,
  )
  asUser = Stats.create(t.userUrl, t.schemaOptions)
  workerPool = new pg.Pool({ connectionString: t.workerUrl, max: 2 })
  asWorker = Stats.create(workerPool, t.schemaOptions)
})
afterAll(async () => {
  await asUser?.close()
  await asWorker?.close()
  await workerPool?.end()
  await t.cleanup()
})

const zeroQueue = { pending: 0, scheduled: 0, running: 0, retrying: 0, waiting: 0, completed: 0, failed: 0, cancelled: 0, oldestPendingAgeMs: null, failedLast24h: 0, lastFailureAt: null }

describe('queues()', () => {
  it('counts live jobs by state and finished jobs in the window, for one tenant', async () => {
    // A queue appears when it has live jobs or history in the range ('hist' has only old history).
    const [emails, reports, ...rest] = await asUser.forTenant('acme').queues({ window: 3_600_000 })
    expect(rest).toEqual([])
    expect(emails).toMatchObject({
      queue: 'emails', pending: 4, scheduled: 2, running: 1, retrying: 2,
      completed: 3, failed: 0, cancelled: 0, failedLast24h: 1,
    })
    expect(emails!.oldestPendingAgeMs).toBeGreaterThanOrEqual(600_000)
    expect(emails!.oldestPendingAgeMs).toBeLessThan(660_000)
    expect(Date.now() - emails!.lastFailureAt!.getTime()).toBeGreaterThanOrEqual(7_200_000)
    expect(Date.now() - emails!.lastFailureAt!.getTime()).toBeLessThan(7_300_000)
    expect(reports).toEqual({ queue: 'reports', ...zeroQueue, running: 1, waiting: 1 })
  })

  it('widens finished counts with the window', async () => {
    const [emails] = await asUser.forTenant('acme').queues({ window: 48 * 3_600_000, queue: 'emails' })
    expect(emails).toMatchObject({ queue: 'emails', completed: 3, failed: 2, cancelled: 1, failedLast24h: 1 })
    expect(Date.now() - emails!.lastFailureAt!.getTime()).toBeLessThan(7_300_000)
  })

  it('answers the same for a tenant through the worker role, and across tenants', async () => {
    const viaUser = await asUser.forTenant('acme').queues({ window: 3_600_000 })
    const viaWorker = await asWorker.queues({ window: 3_600_000, tenantId: 'acme' })
    expect(viaWorker.map(({ oldestPendingAgeMs: _a, ...r }) => r)).toEqual(viaUser.map(({ oldestPendingAgeMs: _a, ...r }) => r))
    const all = await asWorker.queues({ window: 3_600_000 })
    expect(all.find((q) => q.queue === 'emails')).toMatchObject({ pending: 9, completed: 4, failed: 1, failedLast24h: 2 })
    expect(all.find((q) => q.queue === 'emails')!.oldestPendingAgeMs).toBeGreaterThanOrEqual(86_400_000)
  })
})

describe('histogram()', () => {
  const range = { from: new Date('2020-01-01T09:30:00Z'), to: new Date('2020-01-01T13:00:00Z') }
  it('counts per hour with empty buckets filled', async () => {
    const points = await asUser.forTenant('acme').histogram({ ...range, bucket: 'hour' })
    expect(points).toEqual([
      { at: new Date('2020-01-01T09:00:00Z'), completed: 0, failed: 0, cancelled: 0 },
      { at: new Date('2020-01-01T10:00:00Z'), completed: 2, failed: 0, cancelled: 0 },
      { at: new Date('2020-01-01T11:00:00Z'), completed: 0, failed: 1, cancelled: 0 },
      { at: new Date('2020-01-01T12:00:00Z'), completed: 1, failed: 0, cancelled: 1 },
    ])
  })

  it('counts per minute and per day, filters by queue and state, and aligns days to the time zone', async () => {
    const minutes = await asUser.forTenant('acme').histogram({ from: new Date('2020-01-01T10:04:00Z'), to: new Date('2020-01-01T10:11:00Z'), bucket: 'minute', queue: 'hist' })
    expect(minutes.map((p) => p.completed)).toEqual([0, 1, 0, 0, 0, 0, 1])
    const days = await asUser.forTenant('acme').histogram({ from: new Date('2019-12-31T00:00:00Z'), to: new Date('2020-01-03T00:00:00Z'), bucket: 'day', states: ['completed'] })
    expect(days).toEqual([
      { at: new Date('2019-12-31T00:00:00Z'), completed: 0, failed: 0, cancelled: 0 },
      { at: new Date('2020-01-01T00:00:00Z'), completed: 3, failed: 0, cancelled: 0 },
      { at: new Date('2020-01-02T00:00:00Z'), completed: 0, failed: 0, cancelled: 0 },
    ])
    const kolkata = Stats.create(t.userUrl, { ...t.schemaOptions, timezone: 'Asia/Kolkata', poolSize: 1 })
    try {
      const local = await kolkata.forTenant('acme').histogram({ from: new Date('2019-12-31T18:30:00Z'), to: new Date('2020-01-01T18:30:00Z'), bucket: 'day' })
      expect(local).toEqual([{ at: new Date('2019-12-31T18:30:00Z'), completed: 3, failed: 1, cancelled: 1 }])
    } finally {
      await kolkata.close()
    }
    const global = await asWorker.histogram({ ...range, bucket: 'hour', queue: 'hist' })
    expect(global.map((p) => p.completed)).toEqual([0, 3, 0, 1])
  })
})

describe('latency()', () => {
  it('gives p50/p95/p99 of wait and run time per queue over the window', async () => {
    const [emails] = await asUser.forTenant('acme').latency({ window: 3_600_000 })
    expect(emails!.queue).toBe('emails')
    expect(emails!.count).toBe(3)
    expect(emails!.waitMs.p50).toBeCloseTo(2000, 3)
    expect(emails!.waitMs.p95).toBeCloseTo(2900, 3)
    expect(emails!.waitMs.p99).toBeCloseTo(2980, 3)
    expect(emails!.runMs).toEqual({ p50: expect.closeTo(20_000, 3), p95: expect.closeTo(29_000, 3), p99: expect.closeTo(29_800, 3) })
    const all = await asWorker.latency({ window: 3_600_000, queue: 'emails' })
    expect(all[0]!.count).toBe(5)
    expect(all[0]!.waitMs.p99).toBeGreaterThan(90_000)
  })
})

describe('schedules()', () => {
  it('counts schedules, paused ones, the next due run and the last run', async () => {
    expect(await asUser.forTenant('acme').schedules()).toEqual({
      total: 3, paused: 1,
      nextDueAt: new Date('2030-01-01T00:03:00Z'),
      lastRunAt: new Date('2030-01-01T00:06:00Z'),
      queues: [
        { queue: 'emails', total: 2, paused: 1, nextDueAt: new Date('2030-01-01T00:05:00Z'), lastRunAt: new Date('2030-01-01T00:06:00Z') },
        { queue: 'reports', total: 1, paused: 0, nextDueAt: new Date('2030-01-01T00:03:00Z'), lastRunAt: null },
      ],
    })
    expect((await asWorker.schedules()).total).toBe(4)
  })
})

describe('tenant isolation', () => {
  it("never includes another tenant's rows, and shows nothing without a tenant", async () => {
    const other = asUser.forTenant('other')
    const queues = await other.queues({ window: 3_600_000 })
    expect(queues).toEqual([{ ...zeroQueue, queue: 'emails', pending: 5, completed: 1, failed: 1, failedLast24h: 1, oldestPendingAgeMs: expect.any(Number), lastFailureAt: expect.any(Date) }])
    expect((await other.latency({ window: 3_600_000 })).map((l) => l.count)).toEqual([2])
    expect((await other.histogram({ from: new Date('2020-01-01T10:00:00Z'), to: new Date('2020-01-01T11:00:00Z'), bucket: 'hour' }))[0]!.completed).toBe(1)
    expect((await other.schedules()).total).toBe(1)

    const nobody = asUser.forTenant('nobody')
    expect(await nobody.queues()).toEqual([])
    expect(await nobody.latency()).toEqual([])
    expect(await nobody.schedules()).toEqual({ total: 0, paused: 0, nextDueAt: null, lastRunAt: null, queues: [] })
    // The user role without forTenant(): row-level security shows nothing at all.
    expect(await asUser.queues()).toEqual([])
    expect((await asUser.histogram({ from: new Date('2020-01-01T10:00:00Z'), to: new Date('2020-01-01T11:00:00Z'), bucket: 'hour' }))[0]!.completed).toBe(0)
  })

  it('leaves no tenant set on pooled connections after a tenant query', async () => {
    const pool = new pg.Pool({ connectionString: t.userUrl, max: 1 })
    const s = Stats.create(pool, t.schemaOptions)
    try {
      await s.forTenant('acme').queues()
      const { rows } = await pool.query(`select count(*)::int as n from "${t.schema}".jobs`)
      expect(rows[0].n).toBe(0)
    } finally {
      await s.close()
      await pool.end()
    }
  })
})

describe('validation', () => {
  it('rejects bad input before querying, naming the field', async () => {
    const s = asUser.forTenant('acme')
    const cases: [Promise<unknown>, string][] = [
      [s.queues({ window: -1 }), 'window'],
      [s.queues({ queue: '' }), 'queue'],
      [s.histogram({ from: new Date('x'), to: new Date(), bucket: 'hour' }), 'from'],
      [s.histogram({ from: new Date(), to: new Date(0), bucket: 'hour' }), 'to'],
      [s.histogram({ from: new Date(0), to: new Date(), bucket: 'week' as never }), 'bucket'],
      [s.histogram({ from: new Date(0), to: new Date(), bucket: 'minute' }), 'bucket'],
      [s.histogram({ from: new Date(0), to: new Date(86_400_000), bucket: 'hour', states: ['done' as never] }), 'states'],
      [s.latency({ window: 1.5 }), 'window'],
      [asWorker.queues({ exact: 'yes' as never }), 'exact'],
    ]
    for (const [p, field] of cases) await expect(p, field).rejects.toMatchObject({ field })
    expect(() => asUser.forTenant('')).toThrow(PgQueueTenantRequiredError)
    expect(() => Stats.create(t.userUrl, { timezone: 'Mars/Olympus' })).toThrow(PgQueueValidationError)
    expect(() => Stats.create(t.userUrl, { liveCountsMaxAgeMs: 0 })).toThrow(PgQueueValidationError)
  })
})
