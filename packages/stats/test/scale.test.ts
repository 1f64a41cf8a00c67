import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createIsolatedDatabase, type IsolatedDatabase } from '@pgqueue/testing'
import { connect, createHistoryPartition, migrate } from '@pgqueue/core/internal'
import { Maintenance } from '@pgqueue/maintenance'
import { Stats, type QueueLatency, type QueueStats } from '@pgqueue/stats'

// Large fixture: behind PGQUEUE_LONG_TESTS=1 (minutes to build). Sizes from the environment.
const LONG = process.env.PGQUEUE_LONG_TESTS === '1'
const LIVE = Number(process.env.PGQUEUE_SCALE_LIVE ?? 1_000_000)
const HISTORY = Number(process.env.PGQUEUE_SCALE_HISTORY ?? 2_000_000)
const DAYS = 30
const TENANTS = 1_000

let t: IsolatedDatabase
let userStats: Stats
let workerStats: Stats

function log(line: string): void {
  process.stderr.write(`[scale] ${line}\n`)
}

async function timed<T>(label: string, fn: () => Promise<T>, runs = 3): Promise<T> {
  let result: T | undefined
  const times: number[] = []
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now()
    result = await fn()
    times.push(performance.now() - t0)
  }
  log(`${label}: ${times.map((x) => x.toFixed(1)).join(' / ')} ms`)
  return result!
}

describe.skipIf(!LONG)(`stats at scale (${LIVE} live, ${HISTORY} history)`, () => {
  beforeAll(async () => {
    t = await createIsolatedDatabase('stats_scale')
    await migrate(t.adminUrl, t.schemaOptions)
    const s = `"${t.schema}"`
    const conn = connect(t.adminUrl, { max: 1 })
    const today = new Date()
    for (let d = -DAYS; d <= 1; d++) await createHistoryPartition(conn.db, new Date(today.getTime() + d * 86_400_000), t.schemaOptions)
    await conn.close()
    let t0 = performance.now()
    // Live: tenant i % 1000, 10 queues; 70 % pending, 15 % scheduled (half due), 10 % held, 5 % running.
    await t.admin.query(`set maintenance_work_mem = '256MB'`)
    await t.admin.query(`
      insert into ${s}.jobs (tenant_id, queue, type, state, vt, run_at, attempt, lease_owner, lease_expires_at)
      select 't' || (i % ${TENANTS}), 'q' || (i % 10), 'x',
             case when i % 20 < 14 then 'pending' when i % 20 < 17 then 'scheduled' when i % 20 < 19 then 'held' else 'running' end,
             case when i % 20 < 14 then i end,
             now() + case when i % 20 in (14, 15) then interval '1 hour' else - (i % 3600) * interval '1 second' end,
             i % 3, case when i % 20 = 19 then 'w' end, case when i % 20 = 19 then now() + interval '1 minute' end
        from generate_series(1, ${LIVE}) i`)
    log(`live insert: ${((performance.now() - t0) / 1000).toFixed(1)} s`)
    t0 = performance.now()
    await t.admin.query(`
      insert into ${s}.job_history (tenant_id, id, queue, type, state, attempt, max_attempts, created_at, run_at, started_at, finished_at)
      select 't' || (i % ${TENANTS}), gen_random_uuid(), 'q' || (i % 10), 'x',
             case when i % 50 = 0 then 'failed' when i % 97 = 0 then 'cancelled' else 'completed' end, 1, 3,
             f - interval '2 seconds', f - interval '1 second' - (i % 1000) * interval '1 millisecond', f - (i % 700) * interval '1 millisecond', f
        from generate_series(1, ${HISTORY}) i,
             lateral (select now() - (i::float8 / ${HISTORY}) * interval '${DAYS} days' as f) x`)
    log(`history insert: ${((performance.now() - t0) / 1000).toFixed(1)} s`)
    await t.admin.query(`vacuum analyze ${s}.jobs`)
    await t.admin.query(`vacuum analyze ${s}.job_history`)
    userStats = Stats.create(t.userUrl, t.schemaOptions)
    workerStats = Stats.create(t.workerUrl, t.schemaOptions)
  }, 900_000)
  afterAll(async () => {
    await userStats?.close()
    await workerStats?.close()
    // PGQUEUE_SCALE_KEEP=1 leaves the fixture for EXPLAIN by hand (drop the schema and roles after).
    if (process.env.PGQUEUE_SCALE_KEEP === '1') {
      log(`kept schema ${t.schema}`)
      await t.admin.end()
    } else await t?.cleanup()
  })

  it('answers every call, and window queries read only the window partitions', async () => {
    const acme = userStats.forTenant('t7')
    const hour = 3_600_000
    const q1 = await timed('tenant queues(window 1h)', () => acme.queues({ window: hour }))
    expect(q1).toHaveLength(1) // t7 only has jobs in q7
    expect(q1[0]!.pending + q1[0]!.scheduled + q1[0]!.running).toBe(LIVE / TENANTS)
    await timed('tenant queues(window 24h)', () => acme.queues({ window: 24 * hour }))
    await timed('tenant histogram(7 days, hour)', () => acme.histogram({ from: new Date(Date.now() - 7 * 24 * hour), to: new Date(), bucket: 'hour' }))
    await timed('tenant latency(24h)', () => acme.latency({ window: 24 * hour }))
    await timed('tenant schedules()', () => acme.schedules())
    // Global calls, first exact (raw tables: what every global call did before rollups), then from
    // Maintenance's rollups and live snapshot.
    const now = Date.now() // histogram ranges fixed, so the two paths can be compared exactly
    const globalCalls = (exact: boolean): Record<string, () => Promise<unknown>> => ({
      'queues(window 1h)': () => workerStats.queues({ window: hour, exact }),
      'queues(window 24h)': () => workerStats.queues({ window: 24 * hour, exact }),
      'queues(window 1h, one queue)': () => workerStats.queues({ window: hour, queue: 'q3', exact }),
      'histogram(24h, minute)': () => workerStats.histogram({ from: new Date(now - 24 * hour), to: new Date(now), bucket: 'minute', exact }),
      'histogram(7 days, hour)': () => workerStats.histogram({ from: new Date(now - 7 * 24 * hour), to: new Date(now), bucket: 'hour', exact }),
      'histogram(30 days, day)': () => workerStats.histogram({ from: new Date(now - 30 * 24 * hour), to: new Date(now), bucket: 'day', exact }),
      'latency(1h)': () => workerStats.latency({ window: hour, exact }),
      'latency(24h)': () => workerStats.latency({ window: 24 * hour, exact }),
      'latency(24h, one queue)': () => workerStats.latency({ window: 24 * hour, queue: 'q3', exact }),
      'latency(30 days)': () => workerStats.latency({ window: 30 * 24 * hour, exact }),
    })
    const exactResults = new Map<string, unknown>()
    for (const [label, call] of Object.entries(globalCalls(true))) exactResults.set(label, await timed(`global ${label}, exact`, call, /days/.test(label) ? 1 : 3))
    const m = Maintenance.create(t.adminUrl, { ...t.schemaOptions, tasks: { partitions: false, retention: false, nodes: false, leases: false, vacuum: false }, rollupMaxChunksPerRun: 1_000 })
    try {
      const report = await timed('maintenance rollup + liveCounts, first run', () => m.runOnce(), 1)
      log(`rollup: ${report.rollup!.chunks} chunks, ${report.rollup!.minuteRows} minute rows, ${report.rollup!.hourRows} hour rows; caught up: ${report.rollup!.caughtUp}`)
      expect(report.rollup!.caughtUp).toBe(true)
      await timed('maintenance rollup + liveCounts, steady run', () => m.runOnce(), 3)
    } finally {
      await m.close()
    }
    const exactCalls = globalCalls(true)
    for (const [label, call] of Object.entries(globalCalls(false))) {
      const result = await timed(`global ${label}, rollups`, call)
      // Same answers: histograms (fixed ranges) exactly; live counts exactly (the snapshot was just
      // taken); finished counts within a row or two of an exact call made right after (windows slide).
      if (label.startsWith('histogram')) expect(result, label).toEqual(exactResults.get(label))
      if (/days/.test(label)) continue
      const exact = await exactCalls[label]!()
      if (label.startsWith('queues')) {
        const [r, e] = [result, exact] as QueueStats[][]
        expect(r!.map((q) => [q.queue, q.pending, q.scheduled, q.running, q.retrying]), label).toEqual(e!.map((q) => [q.queue, q.pending, q.scheduled, q.running, q.retrying]))
        for (const [i, q] of r!.entries()) for (const k of ['completed', 'failed', 'cancelled'] as const) expect(Math.abs(q[k] - e![i]![k]), `${label} ${q.queue} ${k}`).toBeLessThanOrEqual(2)
      }
      if (label.startsWith('latency')) {
        const [r, e] = [result, exact] as QueueLatency[][]
        for (const [i, l] of r!.entries()) expect(Math.abs(l.count - e![i]!.count), label).toBeLessThanOrEqual(2)
      }
    }

    // Plans: the window bound prunes every partition outside it.
    const s = `"${t.schema}"`
    const { rows } = await t.admin.query(`explain (analyze, buffers, costs off)
      select queue, count(*) from ${s}.job_history where tenant_id = 't7' and finished_at >= now() - interval '1 hour' group by queue`)
    const plan = rows.map((r) => r['QUERY PLAN']).join('\n')
    log(`plan, tenant window 1h:\n${plan}`)
    expect(plan).toMatch(/Subplans Removed: \d+/)
    const { rows: g } = await t.admin.query(`explain (analyze, buffers, costs off)
      select queue, count(*) from ${s}.job_history where finished_at >= now() - interval '1 hour' group by queue`)
    log(`plan, global window 1h:\n${g.map((r) => r['QUERY PLAN']).join('\n')}`)
    const { rows: l } = await t.admin.query(`explain (analyze, buffers, costs off)
      select queue, count(*) filter (where state = 'running') from ${s}.jobs where tenant_id = 't7' group by queue`)
    log(`plan, tenant live counts:\n${l.map((r) => r['QUERY PLAN']).join('\n')}`)
    const { rows: lg } = await t.admin.query(`explain (analyze, buffers, costs off)
      select queue, count(*) filter (where state = 'running') from ${s}.jobs group by queue`)
    log(`plan, global live counts:\n${lg.map((r) => r['QUERY PLAN']).join('\n')}`)
  }, 600_000)
})
