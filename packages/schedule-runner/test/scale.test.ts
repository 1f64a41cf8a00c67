import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import pg from 'pg'
import { createIsolatedDatabase, type IsolatedDatabase } from '@pgqueue/testing'
import { migrate } from '@pgqueue/core'
import { ScheduleRunner } from '@pgqueue/schedule-runner'
import { ManualClock, jobTotal } from './helpers.js'

// Heavy: 100,000 due schedules of one tenant and 10,000 tenants. Run with PGQUEUE_SCALE=1; it prints
// figures and asserts behaviour only (who fired in the first batch), never timings.
const enabled = process.env.PGQUEUE_SCALE === '1'

let t: IsolatedDatabase
let pool: pg.Pool
const T0 = new Date('2026-06-01T00:00:00.000Z')

describe.skipIf(!enabled)('ScheduleRunner at scale', () => {
  beforeAll(async () => {
    t = await createIsolatedDatabase('schedscale')
    await migrate(t.adminUrl, t.schemaOptions)
    pool = new pg.Pool({ connectionString: t.workerUrl, max: 2 })
    pool.on('error', () => {})
  })
  afterAll(async () => {
    await pool?.end()
    await t?.cleanup()
  })

  it('100,000 due at midnight for one tenant do not delay 10 other tenants', async () => {
    const s = `"${t.schema}".schedules`
    await t.admin.query(`insert into ${s} (tenant_id, key, queue, type, every_ms, anchor_at, next_run_at)
      select 'big', 'k' || i, 'q', 'tick', 86400000, $1, $1 from generate_series(1, 100000) i`, [T0.toISOString()])
    await t.admin.query(`insert into ${s} (tenant_id, key, queue, type, every_ms, anchor_at, next_run_at)
      select 'small-' || (i % 10), 'k' || i, 'q', 'tick', 86400000, $1, $1 from generate_series(1, 30) i`, [T0.toISOString()])
    await t.admin.query(`analyze ${s}`)
    const r = ScheduleRunner.create(pool, { schema: t.schema, clock: new ManualClock(new Date(T0.getTime() + 500)) })
    let started = Date.now()
    const first = await r.runOnce()
    const firstMs = Date.now() - started
    const { rows } = await t.admin.query(`select count(distinct tenant_id)::int as n from "${t.schema}".jobs where tenant_id like 'small-%'`)
    expect(rows[0].n).toBe(10)
    started = Date.now()
    let batches = 1
    const durations: number[] = [first.durationMs]
    for (;;) {
      const b = await r.runOnce()
      if (b.claimed === 0) break
      batches += 1
      durations.push(b.durationMs)
    }
    console.log(`[scale] batch ms: first 5 ${durations.slice(0, 5).join(' ')}; last 5 ${durations.slice(-5).join(' ')}`)
    const drainMs = Date.now() - started + firstMs
    expect(await jobTotal(t.admin, t.schema)).toBe(100_030)
    console.log(`[scale] first batch: ${first.claimed} schedules, ${first.tenants} tenants, ${firstMs} ms (all 10 small tenants served)`)
    console.log(`[scale] 100,030 fires in ${batches} batches, ${drainMs} ms = ${Math.round(100_030 / (drainMs / 1000))} fires/s`)
    await r.close()
  }, 600_000)

  it('10,000 tenants with one schedule each, one due: poll and batch cost', async () => {
    const s = `"${t.schema}".schedules`
    await t.admin.query(`truncate ${s}, "${t.schema}".jobs, "${t.schema}".queue_clocks`)
    await t.admin.query(`insert into ${s} (tenant_id, key, queue, type, every_ms, anchor_at, next_run_at)
      select 'tenant-' || lpad(i::text, 5, '0'), 'k', 'q', 'tick', 86400000, $1, $1::timestamptz + interval '1 hour'
        from generate_series(1, 10000) i`, [T0.toISOString()])
    await t.admin.query(`update ${s} set next_run_at = $1 where tenant_id = 'tenant-09999'`, [T0.toISOString()])
    await t.admin.query(`analyze ${s}`)
    const clock = new ManualClock(new Date(T0.getTime() + 500))
    const r = ScheduleRunner.create(pool, { schema: t.schema, clock })
    let started = Date.now()
    const res = await r.runOnce()
    const oneDueMs = Date.now() - started
    expect(res.fired).toBe(1)
    started = Date.now()
    for (let i = 0; i < 20; i++) await r.runOnce()
    const idleMs = (Date.now() - started) / 20
    // Everyone due at once: 10,000 tenants, 10 batches of 1,000.
    clock.set(new Date(T0.getTime() + 3_600_000))
    started = Date.now()
    let batches = 0
    while ((await r.runOnce()).claimed > 0) batches += 1
    const allMs = Date.now() - started
    expect(await jobTotal(t.admin, t.schema)).toBe(10_000)
    console.log(`[scale] 10,000 tenants, 1 due: batch ${oneDueMs} ms; idle poll ${idleMs.toFixed(1)} ms`)
    console.log(`[scale] 10,000 tenants all due: ${batches} batches, ${allMs} ms = ${Math.round(10_000 / (allMs / 1000))} fires/s`)
    await r.close()
  }, 600_000)
})
