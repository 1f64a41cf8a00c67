/**
 * Rate limits under kill -9 (issue 18): tenant A is limited to 50 jobs/s (burst 10) beside an unlimited
 * tenant B; two Scheduler processes and two Worker processes run, and one Scheduler and one Worker are
 * killed mid-run (the Worker replaced). A Scheduler killed inside a release leaves an uncommitted
 * transaction: its token debit and its stamping go together. Then: A's recorded starts (history's
 * started_at, the claim's database time) never exceed capacity + rate * window in any window, A kept
 * about its rate, B ran everything, and nothing is lost.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createIsolatedDatabase, type IsolatedDatabase, waitFor } from '@pgqueue/testing'
import { migrate, rateLimitSet } from '@pgqueue/core'
import { createProducer, type Producer } from '@pgqueue/producer'
import pg from 'pg'
import { Cluster } from '../src/cluster.js'
import { reportFigure, sleep } from '../src/harness.js'

let t: IsolatedDatabase
let producer: Producer
let cluster: Cluster
let pool: pg.Pool

beforeAll(async () => {
  t = await createIsolatedDatabase('ratekill')
  await migrate(t.adminUrl, t.schemaOptions)
  producer = createProducer(t.userUrl, { schema: t.schema, poolSize: 2 })
  pool = new pg.Pool({ connectionString: t.workerUrl, max: 1 })
  cluster = new Cluster({ PGQ_URL: t.workerUrl, PGQ_SCHEMA: t.schema, PGQ_LEASE_MS: '2000', PGQ_WORK_MS: '4', PGQ_CONCURRENCY: '8' })
})

afterAll(async () => {
  await cluster?.stopAll()
  await producer?.close()
  await pool?.end()
  await t?.cleanup()
})

/** The most jobs started in any window beyond capacity + rate * window. */
function worstExcess(times: number[], capacity: number, rate: number): number {
  let worst = -Infinity
  for (let i = 0; i < times.length; i++) {
    for (let j = i; j < times.length; j++) worst = Math.max(worst, j - i + 1 - (capacity + (rate * (times[j]! - times[i]!)) / 1000))
  }
  return worst
}

describe('rate limits under kill -9', () => {
  it('hold with a Scheduler and a Worker killed mid-run', async () => {
    const queue = 'api'
    await rateLimitSet(pool, { schema: t.schema, tenantId: 'a', queue, capacity: 10, ratePerSec: 50 })
    for (let i = 0; i < 4; i++) {
      await producer.queues.withTenant('a').pushMany(Array.from({ length: 100 }, () => ({ queue, type: 't' })))
      await producer.queues.withTenant('b').pushMany(Array.from({ length: 300 }, () => ({ queue, type: 't' })))
    }
    const s1 = cluster.spawn('scheduler')
    const s2 = cluster.spawn('scheduler')
    const w1 = cluster.spawn('worker')
    const w2 = cluster.spawn('worker')
    await Promise.all([s1.ready, s2.ready, w1.ready, w2.ready])
    const started = Date.now()
    await sleep(1_500)
    await cluster.kill9(s1)
    await cluster.kill9(w1)
    cluster.spawn('worker')
    await sleep(4_000)
    await waitFor(async () => (await t.admin.query(`select count(*)::int n from "${t.schema}".jobs where tenant_id = 'b'`)).rows[0].n === 0, { timeoutMs: 30_000 })
    const { rows } = await t.admin.query<{ ms: number; tenant_id: string }>(
      `select (extract(epoch from started_at) * 1000)::float8 as ms, tenant_id from "${t.schema}".job_history where queue = $1 order by started_at`,
      [queue],
    )
    const a = rows.filter((r) => r.tenant_id === 'a').map((r) => r.ms)
    const b = rows.filter((r) => r.tenant_id === 'b').length
    const excess = worstExcess(a, 10, 50)
    const rate = ((a.length - 1) / ((a.at(-1)! - a[0]!) / 1000))
    reportFigure('rate-limit kill -9', { aStarted: a.length, aRate: Math.round(rate * 10) / 10, worstExcess: excess, b, kills: cluster.kills, seconds: (Date.now() - started) / 1000 })
    expect(excess).toBeLessThanOrEqual(1)
    expect(rate).toBeGreaterThan(30)
    expect(rate).toBeLessThan(55)
    expect(b).toBe(1_200)
    expect(cluster.total('unhandled')).toBe(0)
  }, 90_000)
})
