import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import pg from 'pg'
import { createIsolatedDatabase, waitFor, type IsolatedDatabase } from '@pgqueue/testing'
import { jobRescueExpired, migrate } from '@pgqueue/core/internal'
import { Queues, type FlowCreated, type TenantQueues } from '@pgqueue/producer'
import { Worker, type FlowParent, type Job, type JobContext } from '@pgqueue/worker'
import { jobFinishMany } from '../src/queries/jobs.js'

let t: IsolatedDatabase
let pool: pg.Pool
let userPool: pg.Pool
let queues: Queues
let acme: TenantQueues
const q = (s: string) => s.replaceAll('S.', `"${t.schema}".`)
const sqlRows = async (text: string, params: unknown[] = []) => (await t.admin.query(q(text), params)).rows

beforeAll(async () => {
  t = await createIsolatedDatabase('worker_flows')
  await migrate(t.adminUrl, t.schemaOptions)
  pool = new pg.Pool({ connectionString: t.workerUrl, max: 4 })
  userPool = new pg.Pool({ connectionString: t.userUrl, max: 2 })
  userPool.on('error', () => {})
  queues = Queues.create(userPool, { schema: t.schema })
  acme = queues.withTenant('acme')
})
afterAll(async () => {
  await queues?.close()
  await userPool?.end()
  await pool?.end()
  await t.cleanup()
})

function worker(nodeId: string, queuesServed: string[], handler: (job: Job, ctx: JobContext) => unknown, extra: object = {}) {
  return Worker.create(t.workerUrl, { nodeId, queues: queuesServed, concurrency: 8, schema: t.schema, pollMs: 200, ...extra }, handler as never)
}

/** Marks a live job as claimed by `owner`, as a Worker's claim does. */
async function claim(id: string, owner: string): Promise<void> {
  await t.admin.query(q(`update S.jobs set state = 'running', vt = null, lease_owner = $2, lease_expires_at = now() + interval '1 minute',
    attempt = attempt + 1, started_at = now() where id = $1`), [id, owner])
}

describe('flows through the Worker', () => {
  it('runs a DAG in dependency order and hands parents\' results down in one query', async () => {
    const f = await acme.flow([
      { ref: 'a', queue: 'fa', type: 'a', payload: { n: 2 } },
      { ref: 'b', queue: 'fb', type: 'b', dependsOn: ['a'] },
      { ref: 'c', queue: 'fa', type: 'c', dependsOn: ['a'] },
      { ref: 'd', queue: 'fb', type: 'd', dependsOn: ['b', 'c'] },
    ])
    const order: string[] = []
    let seen: FlowParent[] = []
    const w = worker('w-dag', ['fa', 'fb'], async (job, ctx) => {
      order.push(job.type)
      expect(job.flowId).toBe(f.flowId)
      const parents = await ctx.parents()
      if (job.type === 'a') return { n: (job.data as { n: number }).n }
      if (job.type === 'b' || job.type === 'c') return { n: (parents[0]!.data as { n: number }).n * (job.type === 'b' ? 10 : 100) }
      seen = parents
      return { sum: parents.reduce((s, p) => s + (p.data as { n: number }).n, 0) }
    })
    await w.start()
    try {
      await waitFor(async () => (await acme.flows.get(f.flowId))!.finished, { timeoutMs: 20_000 })
    } finally {
      await w.stop()
    }
    expect(order[0]).toBe('a')
    expect(order[3]).toBe('d')
    expect(seen.map((p) => [p.ref, p.state, p.data]).sort()).toEqual([['b', 'completed', { n: 20 }], ['c', 'completed', { n: 200 }]])
    const h = await sqlRows('select id, flow_id, result from S.job_history where id = $1', [f.jobs.d])
    expect(h[0].flow_id).toBe(f.flowId)
    expect(JSON.parse(h[0].result.toString())).toEqual({ sum: 220 })
    const info = await acme.flows.get(f.flowId)
    expect(info!.counts).toEqual({ completed: 4 })
  })

  it('a parent failing for good cancels waiting descendants; runOnParentFailure runs and sees the outcome', async () => {
    const f = await acme.flow([
      { ref: 'a', queue: 'fail', type: 'boom', retryPolicy: { type: 'constant', delayMs: 10, maxAttempts: 1 } },
      { ref: 'b', queue: 'fail', type: 'never', dependsOn: ['a'] },
      { ref: 'b2', queue: 'fail', type: 'never', dependsOn: ['b'] },
      { ref: 'cleanup', queue: 'fail', type: 'cleanup', dependsOn: ['a'], runOnParentFailure: true },
    ])
    const ran: string[] = []
    let parents: FlowParent[] = []
    const w = worker('w-fail', ['fail'], async (job, ctx) => {
      ran.push(job.type)
      if (job.type === 'boom') throw new Error('broken')
      parents = await ctx.parents()
    })
    await w.start()
    try {
      await waitFor(async () => (await acme.flows.get(f.flowId))!.finished, { timeoutMs: 20_000 })
    } finally {
      await w.stop()
    }
    expect(ran.sort()).toEqual(['boom', 'cleanup'])
    expect(parents).toHaveLength(1)
    expect(parents[0]).toMatchObject({ ref: 'a', state: 'failed' })
    expect((parents[0]!.error as { message: string }).message).toBe('broken')
    const h = await sqlRows('select id, state, error from S.job_history where flow_id = $1', [f.flowId])
    const by = new Map(h.map((r) => [r.id, r]))
    expect(by.get(f.jobs.b).state).toBe('cancelled')
    expect(by.get(f.jobs.b).error.code).toBe('PARENT_FAILED')
    expect(by.get(f.jobs.b2).state).toBe('cancelled')
    expect(by.get(f.jobs.cleanup).state).toBe('completed')
  })

  it('a parent being retried keeps its children waiting', async () => {
    const f = await acme.flow([
      { ref: 'a', queue: 'retry', type: 'flaky', retryPolicy: { type: 'constant', delayMs: 300, maxAttempts: 3 } },
      { ref: 'b', queue: 'retry', type: 'after', dependsOn: ['a'] },
    ])
    let attempts = 0
    let childStateDuringRetry = ''
    const w = worker('w-retry', ['retry'], async (job) => {
      if (job.type === 'flaky' && ++attempts === 1) throw new Error('once')
      if (job.type === 'flaky') childStateDuringRetry = (await sqlRows('select state from S.jobs where id = $1', [f.jobs.b]))[0].state
    })
    const scheduler = setInterval(() => {
      // Promotes the retried job when due (what the Scheduler does), here by hand to keep the test small.
      void t.admin.query(q(`update S.jobs set state = 'pending', vt = 1 where state = 'scheduled' and run_at <= now() and id = $1`), [f.jobs.a]).catch(() => {})
    }, 100)
    await w.start()
    try {
      await waitFor(async () => (await acme.flows.get(f.flowId))!.finished, { timeoutMs: 20_000 })
    } finally {
      clearInterval(scheduler)
      await w.stop()
    }
    expect(attempts).toBe(2)
    expect(childStateDuringRetry).toBe('waiting')
    expect((await acme.flows.get(f.flowId))!.counts).toEqual({ completed: 2 })
  })

  it('two parents completing at once release their child exactly once', async () => {
    const n = 40
    const flows: FlowCreated[] = []
    for (let i = 0; i < n; i++) {
      flows.push(await acme.flow([
        { ref: 'p1', queue: 'race', type: 'p' },
        { ref: 'p2', queue: 'race', type: 'p' },
        { ref: 'child', queue: 'race-child', type: 'c', dependsOn: ['p1', 'p2'] },
      ]))
    }
    for (const f of flows) {
      await claim(f.jobs.p1!, 'n1/a')
      await claim(f.jobs.p2!, 'n2/b')
    }
    const clockBefore = Number((await sqlRows(`select coalesce(max(last_vt), 0) as v from S.queue_clocks where tenant_id = 'acme' and queue = 'race-child'`))[0].v)
    const outcome = (id: string, owner: string) => ({ tenantId: 'acme', id, owner, outcome: 'completed' as const, result: null, resultType: null, error: null, delayMs: 0 })
    // One transaction holds the first parents' completion open while the second parents complete.
    const c1 = await pool.connect()
    const c2 = await pool.connect()
    try {
      await c1.query('begin')
      await jobFinishMany(c1, { schema: t.schema, nodeId: 'n1', items: flows.map((f) => outcome(f.jobs.p1!, 'n1/a')), lockTimeoutMs: 30_000 })
      const second = jobFinishMany(c2, { schema: t.schema, nodeId: 'n2', items: flows.map((f) => outcome(f.jobs.p2!, 'n2/b')), lockTimeoutMs: 30_000 })
      await new Promise((r) => setTimeout(r, 200))
      await c1.query('commit')
      expect((await second).size).toBe(n)
    } finally {
      c1.release()
      c2.release()
    }
    const children = await sqlRows(`select state, vt from S.jobs where queue = 'race-child'`)
    expect(children).toHaveLength(n)
    expect(children.every((c) => c.state === 'pending' && c.vt !== null)).toBe(true)
    expect(new Set(children.map((c) => c.vt)).size).toBe(n)
    const clockAfter = Number((await sqlRows(`select max(last_vt) as v from S.queue_clocks where tenant_id = 'acme' and queue = 'race-child'`))[0].v)
    // Released once each: the tenant's clock moved by one stride per child (1000 at weight 1), no more.
    expect(clockAfter - Math.max(clockBefore, Number(children.map((c) => c.vt).sort((a, b) => Number(a) - Number(b))[0]) - 1000)).toBe(n * 1000)
    const nodes = await sqlRows(`select parents_left, state from S.flow_nodes where queue = 'race-child'`)
    expect(nodes.every((x) => x.parents_left === 0 && x.state === 'live')).toBe(true)
    await t.admin.query(q(`delete from S.jobs where queue in ('race', 'race-child')`))
  })

  it('parents completing concurrently in many small batches never lose or double a release', async () => {
    const n = 60
    const flows: FlowCreated[] = []
    for (let i = 0; i < n; i++) {
      flows.push(await acme.flow([
        { ref: 'p1', queue: 'race2', type: 'p' },
        { ref: 'p2', queue: 'race2', type: 'p' },
        { ref: 'p3', queue: 'race2', type: 'p' },
        { ref: 'child', queue: 'race2-child', type: 'c', dependsOn: ['p1', 'p2', 'p3'] },
      ]))
    }
    for (const f of flows) for (const p of ['p1', 'p2', 'p3']) await claim(f.jobs[p]!, `n-${p}/x`)
    await Promise.all(['p1', 'p2', 'p3'].map(async (p) => {
      for (const f of flows) {
        await jobFinishMany(pool, {
          schema: t.schema, nodeId: `n-${p}`, lockTimeoutMs: 30_000,
          items: [{ tenantId: 'acme', id: f.jobs[p]!, owner: `n-${p}/x`, outcome: 'completed', result: null, resultType: null, error: null, delayMs: 0 }],
        })
      }
    }))
    const children = await sqlRows(`select state from S.jobs where queue = 'race2-child'`)
    expect(children).toHaveLength(n)
    expect(children.every((c) => c.state === 'pending')).toBe(true)
    await t.admin.query(q(`delete from S.jobs where queue in ('race2', 'race2-child')`))
  })

  it('the lease rescue settles a flow: a parent out of attempts cancels its child, one with attempts left keeps it waiting', async () => {
    const f = await acme.flow([
      { ref: 'dead', queue: 'rescue', type: 'p', retryPolicy: { type: 'constant', delayMs: 10, maxAttempts: 1 } },
      { ref: 'alive', queue: 'rescue', type: 'p', retryPolicy: { type: 'constant', delayMs: 10, maxAttempts: 3 } },
      { ref: 'c1', queue: 'rescue', type: 'c', dependsOn: ['dead'] },
      { ref: 'c2', queue: 'rescue', type: 'c', dependsOn: ['alive'] },
    ])
    await claim(f.jobs.dead!, 'gone/1')
    await claim(f.jobs.alive!, 'gone/2')
    await t.admin.query(q(`update S.jobs set lease_expires_at = now() - interval '1 second' where id in ($1, $2)`), [f.jobs.dead, f.jobs.alive])
    expect(await jobRescueExpired(pool, { schema: t.schema, limit: 100 })).toEqual({ rescued: 1, failed: 1, cancelled: 0 })
    const h = await sqlRows('select id, state, error from S.job_history where flow_id = $1', [f.flowId])
    expect(h.find((r) => r.id === f.jobs.c1)).toMatchObject({ state: 'cancelled' })
    expect((await sqlRows('select state from S.jobs where id = $1', [f.jobs.c2]))[0].state).toBe('waiting')
  })

  it('a running job fans out 1,000 children at run time and a merge waits for all of them', async () => {
    const root = await acme.push({ queue: 'fan', type: 'split', payload: { n: 1000 } })
    let merged: { count: number; sum: number } | undefined
    const w = worker('w-fan', ['fan'], async (job, ctx) => {
      if (job.type === 'split') {
        const n = (job.data as { n: number }).n
        // N known only now: N children of this job (they start when it completes), then a merge that
        // waits for all of them, by the ids the first call returned.
        const chunks = await ctx.flow.add(Array.from({ length: n }, (_, i) => ({ ref: `chunk-${i}`, queue: 'fan', type: 'chunk', payload: { i }, dependsOn: [job.id] })))
        await ctx.flow.add([{ ref: 'merge', queue: 'fan', type: 'merge', dependsOn: Object.values(chunks.jobs) }])
        return { chunks: n }
      }
      if (job.type === 'chunk') return { v: (job.data as { i: number }).i }
      const parents = await ctx.parents()
      merged = { count: parents.length, sum: parents.reduce((s, p) => s + (p.data as { v: number }).v, 0) }
      return merged
    }, { concurrency: 20 })
    await w.start()
    try {
      await waitFor(() => merged !== undefined, { timeoutMs: 60_000 })
    } finally {
      await w.stop()
    }
    expect(merged).toEqual({ count: 1000, sum: (999 * 1000) / 2 })
    const flowId = (await sqlRows('select flow_id from S.job_history where id = $1', [root.id]))[0].flow_id
    expect(flowId).not.toBeNull()
    const info = await acme.flows.get(flowId)
    expect(info!.nodes).toHaveLength(1002)
    expect(info!.counts).toEqual({ completed: 1002 })
    // Every chunk started after the splitter finished, and the merge after every chunk.
    const early = await sqlRows(
      `select count(*)::int as n from S.flow_edges e
         join S.job_history p on p.tenant_id = e.tenant_id and p.id = e.parent_id
         join S.job_history c on c.tenant_id = e.tenant_id and c.id = e.child_id
        where c.flow_id = $1 and c.run_at < p.finished_at`, [flowId])
    expect(early[0].n).toBe(0)
  })
})

describe('the completion of jobs outside flows', () => {
  it('never calls the flow function; flow jobs do', async () => {
    // Count calls of flow_parents_done() made by the Worker's sessions (track_functions, set for its login).
    const login = new URL(t.workerUrl).username
    await t.admin.query(`alter role "${login}" set track_functions = 'pl'`)
    const calls = async () => {
      await new Promise((r) => setTimeout(r, 700)) // statistics reach the shared view at most every 500 ms
      const { rows } = await t.admin.query(
        `select coalesce(sum(calls), 0)::int as n from pg_stat_user_functions where schemaname = $1 and funcname = 'flow_parents_done'`, [t.schema])
      return rows[0].n as number
    }
    let done = 0
    const w = worker('w-plain', ['plain'], () => {
      done++
    })
    await w.start()
    try {
      const before = await calls()
      await acme.pushMany(Array.from({ length: 200 }, () => ({ queue: 'plain', type: 't' })))
      await waitFor(() => done === 200, { timeoutMs: 20_000 })
      await waitFor(async () => (await sqlRows(`select count(*)::int as n from S.jobs where queue = 'plain'`))[0].n === 0)
      await w.stop()
      expect(await calls()).toBe(before)
      const w2 = worker('w-plain-2', ['plain'], () => {})
      await w2.start()
      const f = await acme.flow([{ ref: 'a', queue: 'plain', type: 't' }, { ref: 'b', queue: 'plain', type: 't', dependsOn: ['a'] }])
      await waitFor(async () => (await acme.flows.get(f.flowId))!.finished, { timeoutMs: 20_000 })
      await w2.stop()
      expect(await calls()).toBeGreaterThan(before)
    } finally {
      await w.stop()
      await t.admin.query(`alter role "${login}" reset track_functions`)
    }
  })
})

describe('a saga on flows (docs/FLOWS.md)', () => {
  const steps = ['reserve-stock', 'charge-card', 'book-courier'] as const

  /** Creates the saga: the steps in a chain, and a finisher that runs whatever their outcomes. */
  async function startSaga(order: string) {
    return acme.flow([
      // One attempt each, so a failure is final without a Scheduler promoting retries in this test.
      ...steps.map((step, i) => ({
        ref: step, queue: 'saga', type: step, payload: { order }, retryPolicy: { type: 'constant' as const, delayMs: 10, maxAttempts: 1 },
        ...(i > 0 ? { dependsOn: [steps[i - 1]!] } : {}),
      })),
      { ref: 'finish', queue: 'saga', type: 'finish', dependsOn: [...steps], runOnParentFailure: true },
    ])
  }

  /** The saga's handlers; `failAt` makes one step fail for good. */
  function sagaHandler(failAt: string | null, log: string[]) {
    return async (job: Job, ctx: JobContext) => {
      if ((steps as readonly string[]).includes(job.type)) {
        if (job.type === failAt) throw new Error(`${job.type} failed`)
        log.push(job.type)
        return { done: job.type }
      }
      if (job.type === 'finish') {
        const parents = await ctx.parents()
        if (parents.every((p) => p.state === 'completed')) return { saga: 'committed' }
        // Undo the completed steps, last first: each compensation waits for the one after it.
        const done = steps.filter((s) => parents.find((p) => p.ref === s)?.state === 'completed').reverse()
        await ctx.flow.add(done.map((s, i) => ({
          ref: `undo-${s}`, queue: 'saga', type: 'compensate', payload: { step: s },
          ...(i > 0 ? { dependsOn: [`undo-${done[i - 1]}`] } : {}),
        })))
        return { saga: 'compensating', steps: done }
      }
      log.push(`undo ${(job.data as { step: string }).step}`)
      return null
    }
  }

  it('commits when every step completes', async () => {
    const log: string[] = []
    const f = await startSaga('o-1')
    const w = worker('w-saga-ok', ['saga'], sagaHandler(null, log), { concurrency: 4 })
    await w.start()
    try {
      await waitFor(async () => (await acme.flows.get(f.flowId))!.finished, { timeoutMs: 20_000 })
    } finally {
      await w.stop()
    }
    expect(log).toEqual([...steps])
    const h = await sqlRows('select result from S.job_history where id = $1', [f.jobs.finish])
    expect(JSON.parse(h[0].result.toString())).toEqual({ saga: 'committed' })
  })

  it('runs the compensations of the completed steps in reverse when a later step fails', async () => {
    const log: string[] = []
    const f = await startSaga('o-2')
    const w = worker('w-saga-undo', ['saga'], sagaHandler('book-courier', log), { concurrency: 4 })
    await w.start()
    try {
      await waitFor(async () => log.length === 4 && (await acme.flows.get(f.flowId))!.finished, { timeoutMs: 20_000 })
    } finally {
      await w.stop()
    }
    expect(log).toEqual(['reserve-stock', 'charge-card', 'undo charge-card', 'undo reserve-stock'])
    const info = await acme.flows.get(f.flowId)
    expect(info!.nodes.find((n) => n.ref === 'book-courier')!.state).toBe('failed')
    expect(info!.counts).toEqual({ completed: 5, failed: 1 })
  })
})
