/**
 * kill -9 of a worker process in the middle of flows (issue 20): 3 tenants x 40 flows of 8 jobs (a root,
 * a fan-out of 5, their join, and a tail), two worker processes and a Scheduler (lease rescue); one
 * worker is killed mid-run and replaced. Then: every node in history exactly once and completed, nothing
 * left waiting or live, every child released after all its parents had finished, and every flow node
 * settled.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createIsolatedDatabase, type IsolatedDatabase, waitFor } from '@pgqueue/testing'
import { migrate } from '@pgqueue/core'
import { createProducer, type Producer } from '@pgqueue/producer'
import { Cluster, drain } from '../src/cluster.js'
import { reportFigure } from '../src/harness.js'

const TENANTS = ['flow-a', 'flow-b', 'flow-c']
const FLOWS = 40
let t: IsolatedDatabase
let producer: Producer
let cluster: Cluster

beforeAll(async () => {
  t = await createIsolatedDatabase('killflows')
  await migrate(t.adminUrl, t.schemaOptions)
  producer = createProducer(t.userUrl, { schema: t.schema, poolSize: 2 })
  cluster = new Cluster({ PGQ_URL: t.workerUrl, PGQ_SCHEMA: t.schema, PGQ_LEASE_MS: '2000', PGQ_WORK_MS: '80', PGQ_CONCURRENCY: '8' })
})

afterAll(async () => {
  await cluster?.stopAll()
  await producer?.close()
  await t?.cleanup()
})

describe('kill -9 of a worker in the middle of flows', () => {
  it('releases every child once, after its parents, and leaves nothing waiting', async () => {
    const scheduler = cluster.spawn('scheduler')
    const w1 = cluster.spawn('worker')
    const w2 = cluster.spawn('worker')
    await Promise.all([scheduler.ready, w1.ready, w2.ready])
    const started = Date.now()
    const ids = new Set<string>()
    for (const tenant of TENANTS) {
      const q = producer.queues.withTenant(tenant)
      for (let i = 0; i < FLOWS; i++) {
        const fan = Array.from({ length: 5 }, (_, k) => `m${k}`)
        const f = await q.flow([
          { ref: 'root', queue: i % 2 ? 'fa' : 'fb', type: 'root' },
          ...fan.map((ref, k) => ({ ref, queue: k % 2 ? 'fa' : 'fb', type: 'mid', dependsOn: ['root'] })),
          { ref: 'join', queue: 'fa', type: 'join', dependsOn: fan },
          { ref: 'tail', queue: 'fb', type: 'tail', dependsOn: ['join'] },
        ])
        for (const id of Object.values(f.jobs)) ids.add(id)
      }
    }
    await waitFor(() => Number(w1.stats.completed ?? 0) > 60, { timeoutMs: 60_000, message: 'worker 1 progress' })
    await cluster.kill9(w1)
    cluster.spawn('worker')
    await drain(t.admin, t.schema, TENANTS, 120_000)

    const s = `"${t.schema}"`
    const hist = await t.admin.query<{ id: string; n: number; state: string }>(
      `select id::text, count(*)::int as n, min(state) as state from ${s}.job_history where tenant_id = any($1) group by tenant_id, id`, [TENANTS])
    const byId = new Map(hist.rows.map((r) => [r.id, r]))
    let lost = 0
    let duplicates = 0
    let notCompleted = 0
    for (const id of ids) {
      const r = byId.get(id)
      if (!r) lost += 1
      else {
        if (r.n > 1) duplicates += r.n - 1
        if (r.state !== 'completed') notCompleted += 1
      }
    }
    // Released after every parent's outcome: each flow job's handler asks ctx.parents() as it starts
    // and counts a parent still waiting or live (tests/reliability/src/worker-process.ts). Timestamps
    // cannot show it: a child's run_at is the now() of the statement that released it, the transaction
    // start, which can precede the commit of a sibling parent's finish that it waited for.
    await new Promise((r) => setTimeout(r, 1_200)) // the workers' last stats lines
    const unsettled = await t.admin.query<{ n: number }>(
      `select count(*)::int as n from ${s}.flow_nodes where tenant_id = any($1) and (state <> 'completed' or parents_left <> 0)`, [TENANTS])
    const attempts = await t.admin.query<{ n: number }>(`select coalesce(sum(attempt), 0)::int as n from ${s}.job_history where tenant_id = any($1)`, [TENANTS])
    const v = { jobs: ids.size, lost, duplicates, notCompleted, releasedEarly: cluster.total('releasedEarly'), unsettled: unsettled.rows[0]!.n, redeliveries: attempts.rows[0]!.n - ids.size }
    reportFigure('kill-worker-flows (default run)', { ...v, kills: cluster.kills, seconds: (Date.now() - started) / 1000, unhandled: cluster.total('unhandled') })
    expect(v).toMatchObject({ jobs: TENANTS.length * FLOWS * 8, lost: 0, duplicates: 0, notCompleted: 0, releasedEarly: 0, unsettled: 0 })
    expect(cluster.total('unhandled')).toBe(0)
  })
})
