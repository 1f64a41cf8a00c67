import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createIsolatedDatabase, type IsolatedDatabase } from '@pgqueue/testing'
import { migrate, LATENCY_RELATIVE_ERROR } from '@pgqueue/core/internal'
import { Maintenance, type MaintenanceOptions } from '@pgqueue/maintenance'
import { Stats, type QueueStats } from '@pgqueue/stats'

const HOUR = 3_600_000
const onlyRollups = { partitions: false, retention: false, nodes: false, leases: false, vacuum: false, rollup: true, liveCounts: false }

let t: IsolatedDatabase
let global: Stats
let s: string

/**
 * History over the last 75 hours: 7 tenants, 3 queues, all outcomes, waits from 1 ms to 50 s and runs
 * from 1 ms to 5 minutes, times spread pseudo-randomly (so rows fall inside minutes, at window edges...).
 */
async function insertHistory(n: number, hours: number, offset = 0, notBefore?: Date): Promise<void> {
  // Rows finish between `from` and now. A tail row must finish after the rollup's watermark: one behind
  // it is neither rolled up nor read raw, which made this test fail now and then.
  const from = notBefore === undefined
    ? `now() - interval '${hours} hours'`
    : `greatest(now() - interval '${hours} hours', '${notBefore.toISOString()}'::timestamptz + interval '1 millisecond')`
  await t.admin.query(`
    insert into ${s}.job_history (tenant_id, id, queue, type, state, attempt, max_attempts, created_at, run_at, started_at, finished_at)
    select 't' || (i % 7), gen_random_uuid(), 'q' || (i % 3), 'x',
           case when i % 11 = 0 then 'failed' when i % 13 = 0 then 'cancelled' else 'completed' end, 1, 1,
           f - interval '1 hour', f - (w + r) * interval '1 millisecond',
           case when i % 26 = 0 then null else f - r * interval '1 millisecond' end, f
      from generate_series(${offset + 1}, ${offset + n}) i,
           lateral (select now() - ((i::bigint * 2654435761) % 1000003) / 1000003.0 * (now() - (${from})) as f,
                           1 + (i::bigint * 7919) % 50000 as w, 1 + ((i::bigint * 104729) % 3000000) / 10.0 as r) x`)
}

function maintenance(options: MaintenanceOptions = {}): Maintenance {
  return Maintenance.create(t.adminUrl, { ...t.schemaOptions, tasks: onlyRollups, rollupSafetyLagMs: 0, poolSize: 1, ...options })
}

/** Runs the rollup until it has caught up; returns how many runs it took. */
async function rollUp(options: MaintenanceOptions = {}): Promise<number> {
  const m = maintenance(options)
  try {
    for (let runs = 1; ; runs++) if ((await m.runOnce()).rollup!.caughtUp) return runs
  } finally {
    await m.close()
  }
}

const finished = (qs: QueueStats[]) => qs.map(({ queue, completed, failed, cancelled, failedLast24h, lastFailureAt }) => ({ queue, completed, failed, cancelled, failedLast24h, lastFailureAt }))

/** Global results from the rollups equal (counts, histograms) or approach (latency) the raw queries. */
async function expectRollupsMatchRaw(): Promise<void> {
  for (const window of [60_000, HOUR, 24 * HOUR, 30 * HOUR + 12_345, 80 * HOUR]) {
    for (const queue of [undefined, 'q1']) {
      expect(finished(await global.queues({ window, queue })), `queues ${window} ${queue}`).toEqual(finished(await global.queues({ window, queue, exact: true })))
    }
    const fast = await global.latency({ window })
    const exact = await global.latency({ window, exact: true })
    expect(fast.map((l) => [l.queue, l.count])).toEqual(exact.map((l) => [l.queue, l.count]))
    for (const [i, l] of fast.entries()) {
      for (const k of ['waitMs', 'runMs'] as const) {
        for (const p of ['p50', 'p95', 'p99'] as const) {
          const want = exact[i]![k][p]
          expect(Math.abs(l[k][p] - want) / want, `${l.queue} ${k} ${p}`).toBeLessThanOrEqual(LATENCY_RELATIVE_ERROR + 1e-9)
        }
      }
    }
  }
  const now = Date.now()
  const ranges: [Date, Date, 'minute' | 'hour' | 'day'][] = [
    [new Date(now - 3 * HOUR - 17_000), new Date(now), 'minute'],
    [new Date(now - 50 * HOUR - 61_000), new Date(now - 20 * HOUR + 7_000), 'minute'],
    [new Date(now - 80 * HOUR), new Date(now + HOUR), 'hour'],
    [new Date(now - 26 * HOUR + 1_000), new Date(now - 2 * HOUR - 1_000), 'hour'],
    [new Date(now - 5 * 24 * HOUR), new Date(now), 'day'],
  ]
  for (const timezone of ['UTC', 'America/New_York', 'Asia/Kolkata']) {
    const zoned = Stats.create(t.workerUrl, { ...t.schemaOptions, timezone, poolSize: 1 })
    try {
      for (const [from, to, bucket] of ranges) {
        for (const opts of [{}, { queue: 'q2', states: ['failed' as const, 'cancelled' as const] }]) {
          const fast = await zoned.histogram({ from, to, bucket, ...opts })
          expect(fast, `${timezone} ${bucket} ${from.toISOString()}`).toEqual(await zoned.histogram({ from, to, bucket, ...opts, exact: true }))
        }
      }
    } finally {
      await zoned.close()
    }
  }
}

beforeAll(async () => {
  t = await createIsolatedDatabase('stats_rollups')
  await migrate(t.adminUrl, t.schemaOptions)
  s = `"${t.schema}"`
  await insertHistory(6000, 75)
  global = Stats.create(t.workerUrl, t.schemaOptions)
})
afterAll(async () => {
  await global?.close()
  await t.cleanup()
})

describe('history rollups', () => {
  it('answer global calls like the raw queries, with the tail after the watermark', async () => {
    // Partitions first, as in production: rows move out of the default partition keeping finished_at.
    await Maintenance.runOnce(t.adminUrl, { ...t.schemaOptions, tasks: { ...onlyRollups, partitions: true, rollup: false } })
    // Small chunks: the first pass over 75 hours takes several runs, each chunk its own transaction.
    // Retention bounds are checked against the time before the runs (a run's cut is later, never earlier).
    const startedAt = Date.now()
    const runs = await rollUp({ rollupChunkMs: 6 * HOUR, rollupMaxChunksPerRun: 3, rollupMinutesRetentionMs: 24 * HOUR })
    expect(runs).toBeGreaterThan(2)
    const { rows } = await t.admin.query(`select rolled_up_to, minutes_from from ${s}.stats_rollup_state`)
    expect(rows[0].rolled_up_to.getTime() % 60_000).toBe(0)
    expect(startedAt - rows[0].minutes_from.getTime()).toBeLessThanOrEqual(24 * HOUR + 60_000)
    await expectRollupsMatchRaw()

    // Rows finished after the watermark (the tail) are read raw.
    const watermark = (await t.admin.query(`select rolled_up_to from ${s}.stats_rollup_state`)).rows[0].rolled_up_to as Date
    await insertHistory(50, 0.001, 10_000, watermark)
    await expectRollupsMatchRaw()
    // Tenant calls read raw rows, as before: skewing the rollups changes global answers only.
    const tenant = async () => [await global.forTenant('t3').queues({ window: 24 * HOUR }), await global.forTenant('t3').latency({ window: 24 * HOUR })]
    const tenantBefore = await tenant()
    const globalBefore = await global.queues({ window: 24 * HOUR })
    await t.admin.query(`update ${s}.history_rollup_hours set completed = completed + 1000`)
    await t.admin.query(`update ${s}.history_rollup_minutes set completed = completed + 1000`)
    try {
      expect(await tenant()).toEqual(tenantBefore)
      expect(finished(await global.queues({ window: 24 * HOUR }))).not.toEqual(finished(globalBefore))
    } finally {
      await t.admin.query(`update ${s}.history_rollup_hours set completed = completed - 1000`)
      await t.admin.query(`update ${s}.history_rollup_minutes set completed = completed - 1000`)
    }
  })

  it('never count a row twice: reruns and concurrent instances', async () => {
    // One frozen clock for every run, so a minute boundary passing mid-test cannot move the end.
    const at = new Date()
    const clock = { now: () => at }
    await rollUp({ clock })
    await rollUp({ clock })
    await expectRollupsMatchRaw()
    const before = await t.admin.query(`select * from ${s}.history_rollup_hours order by bucket, queue`)

    // From scratch, with four instances at once: each chunk is done by one of them.
    await t.admin.query(`delete from ${s}.history_rollup_minutes; delete from ${s}.history_rollup_hours;
                         update ${s}.stats_rollup_state set rolled_up_to = null, minutes_from = null`)
    const instances = Array.from({ length: 4 }, () => maintenance({ rollupChunkMs: 2 * HOUR, rollupMaxChunksPerRun: 100, clock }))
    try {
      const reports = await Promise.all(instances.map((m) => m.runOnce()))
      expect(reports.some((r) => r.rollup!.caughtUp)).toBe(true)
      expect(reports.reduce((n, r) => n + r.rollup!.chunks, 0)).toBeGreaterThanOrEqual(38)
    } finally {
      await Promise.all(instances.map((m) => m.close()))
    }
    const after = await t.admin.query(`select * from ${s}.history_rollup_hours order by bucket, queue`)
    expect(after.rows).toEqual(before.rows)
    await expectRollupsMatchRaw()
  })

  it('deletes minute rows after rollupMinutesRetentionMs and hour rows after the history retention', async () => {
    const startedAt = Date.now()
    const report = await Maintenance.runOnce(t.adminUrl, { ...t.schemaOptions, tasks: onlyRollups, retentionMs: 24 * HOUR, rollupMinutesRetentionMs: 2 * HOUR })
    expect(report.rollup!.deletedRows).toBeGreaterThan(0)
    const { rows } = await t.admin.query(`
      select (select min(bucket) from ${s}.history_rollup_minutes) as m, (select min(bucket) from ${s}.history_rollup_hours) as h,
             (select minutes_from from ${s}.stats_rollup_state) as mf`)
    expect(startedAt - rows[0].m.getTime()).toBeLessThanOrEqual(2 * HOUR + 60_000)
    expect(rows[0].mf.getTime()).toBeLessThanOrEqual(rows[0].m.getTime())
    expect(startedAt - rows[0].h.getTime()).toBeLessThanOrEqual(25 * HOUR)
    // Windows within what is kept still match; older minutes come from raw history.
    const from = new Date(Date.now() - 20 * HOUR + 5_000)
    expect(await global.histogram({ from, to: new Date(), bucket: 'minute' })).toEqual(await global.histogram({ from, to: new Date(), bucket: 'minute', exact: true }))
    expect(finished(await global.queues({ window: 20 * HOUR }))).toEqual(finished(await global.queues({ window: 20 * HOUR, exact: true })))
  })
})

describe('live counts snapshot', () => {
  it('equals the exact counts, says when it was taken, and is ignored once too old', async () => {
    await t.admin.query(`
      insert into ${s}.jobs (tenant_id, queue, type, state, vt, run_at, attempt, lease_owner, lease_expires_at)
      select 't' || (i % 5), 'q' || (i % 4), 'x',
             case when i % 10 < 5 then 'pending' when i % 10 < 7 then 'scheduled' when i % 10 < 8 then 'held'
                  when i % 10 < 9 then 'waiting' else 'running' end,
             case when i % 10 < 5 then i end,
             now() + case when i % 10 = 5 then interval '1 hour' else - (i % 600) * interval '1 second' end,
             i % 3, case when i % 10 = 9 then 'w' end, case when i % 10 = 9 then now() + interval '1 minute' end
        from generate_series(1, 500) i`)
    const before = await global.queues({ window: HOUR })
    expect(before.every((q) => q.liveCountsAt === undefined)).toBe(true) // no snapshot yet: counted exactly
    const report = await Maintenance.runOnce(t.adminUrl, { ...t.schemaOptions, tasks: { ...onlyRollups, rollup: false, liveCounts: true } })
    expect(report.liveCounts).toEqual({ queues: 4 })
    const live = (qs: QueueStats[]) => qs.map(({ queue, pending, scheduled, running, retrying, waiting, oldestPendingAgeMs }) => ({ queue, pending, scheduled, running, retrying, waiting, oldest: Math.round((oldestPendingAgeMs ?? 0) / 10_000) }))
    expect(before.reduce((n, q) => n + q.waiting, 0)).toBe(50)
    const snap = await global.queues({ window: HOUR })
    expect(live(snap)).toEqual(live(await global.queues({ window: HOUR, exact: true })))
    expect(snap[0]!.liveCountsAt).toBeInstanceOf(Date)
    // A snapshot older than liveCountsMaxAgeMs is not used.
    await t.admin.query(`update ${s}.stats_rollup_state set live_counts_at = now() - interval '2 minutes'`)
    expect((await global.queues({ window: HOUR }))[0]!.liveCountsAt).toBeUndefined()
    const patient = Stats.create(t.workerUrl, { ...t.schemaOptions, liveCountsMaxAgeMs: 10 * 60_000, poolSize: 1 })
    try {
      expect((await patient.queues({ window: HOUR }))[0]!.liveCountsAt).toBeInstanceOf(Date)
    } finally {
      await patient.close()
    }
  })
})
