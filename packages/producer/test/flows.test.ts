import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import pg from 'pg'
import { Kysely, PostgresDialect } from 'kysely'
import type { IsolatedDatabase } from '@pgqueue/testing'
import { MAX_FLOW_NODES, PgQueueValidationError, type Database } from '@pgqueue/core/internal'
import { Queues, type TenantQueues } from '../src/index.js'
import { rows, setup } from './helpers.js'

let t: IsolatedDatabase
let userPool: pg.Pool
let queues: Queues
let acme: TenantQueues

beforeAll(async () => {
  ;({ t, userPool } = await setup('producer_flows'))
  queues = Queues.create(userPool, { schema: t.schema })
  acme = queues.withTenant('acme')
})
afterAll(async () => {
  await queues?.close()
  await userPool?.end()
  await t?.cleanup()
})

const count = async (sql: string, params: unknown[] = []) => Number((await rows(t, sql, params))[0].n)

describe('flow()', () => {
  it('creates a DAG in one call: roots pending with a fair time, the others waiting', async () => {
    const f = await acme.flow([
      { ref: 'fetch', queue: 'io', type: 'fetch', payload: { url: 'x' } },
      { ref: 'thumb', queue: 'cpu', type: 'thumb', dependsOn: ['fetch'] },
      { ref: 'ocr', queue: 'cpu', type: 'ocr', dependsOn: ['fetch'] },
      { ref: 'merge', queue: 'io', type: 'merge', dependsOn: ['thumb', 'ocr'], runOnParentFailure: true },
    ])
    expect(Object.keys(f.jobs).sort()).toEqual(['fetch', 'merge', 'ocr', 'thumb'])
    const js = await rows(t, 'select id, state, vt, flow_id from S.jobs where flow_id = $1', [f.flowId])
    const byId = new Map(js.map((r) => [r.id, r]))
    expect(byId.get(f.jobs.fetch!)).toMatchObject({ state: 'pending' })
    expect(byId.get(f.jobs.fetch!).vt).not.toBeNull()
    for (const ref of ['thumb', 'ocr', 'merge']) expect(byId.get(f.jobs[ref]!)).toMatchObject({ state: 'waiting', vt: null })
    expect(await count('select count(*) as n from S.flow_edges where child_id = $1', [f.jobs.merge])).toBe(2)
    const info = await acme.flows.get(f.flowId)
    expect(info!.nodes).toHaveLength(4)
    expect(info!.counts).toEqual({ pending: 1, waiting: 3 })
    expect(info!.edges).toHaveLength(4)
    expect(info!.nodes.find((n) => n.ref === 'merge')).toMatchObject({ parentsLeft: 2, runOnParentFailure: true, state: 'waiting' })
    expect(await acme.get(f.jobs.ocr!)).toMatchObject({ state: 'waiting', flowId: f.flowId })
  })

  it('refuses cycles, unknown and duplicate refs, keys and too many nodes, writing nothing', async () => {
    const before = await count('select count(*) as n from S.jobs')
    const bad: [unknown[], RegExp][] = [
      [[{ ref: 'a', queue: 'q', type: 't', dependsOn: ['b'] }, { ref: 'b', queue: 'q', type: 't', dependsOn: ['a'] }], /cycle/],
      [[{ ref: 'a', queue: 'q', type: 't', dependsOn: ['a'] }], /itself/],
      [[{ ref: 'a', queue: 'q', type: 't', dependsOn: ['zzz'] }], /unknown ref/],
      [[{ ref: 'a', queue: 'q', type: 't' }, { ref: 'a', queue: 'q', type: 't' }], /duplicate ref/],
      [[{ ref: 'a', queue: 'q', type: 't', key: 'k' }], /no key/],
      [[{ queue: 'q', type: 't' }], /ref/],
      [[], /at least one/],
      [Array.from({ length: MAX_FLOW_NODES + 1 }, (_, i) => ({ ref: `n${i}`, queue: 'q', type: 't' })), /at most 1000/],
      [[{ ref: 'a', queue: '', type: 't' }], /queue/],
    ]
    for (const [nodes, message] of bad) {
      const err = await acme.flow(nodes as never).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(PgQueueValidationError)
      expect(String((err as Error).message)).toMatch(message)
    }
    expect(await count('select count(*) as n from S.jobs')).toBe(before)
  })

  it("refuses a dependency on another tenant's job (a job id is not a ref)", async () => {
    const other = await queues.withTenant('other').push({ queue: 'q', type: 't' })
    const err = await acme.flow([{ ref: 'a', queue: 'q', type: 't', dependsOn: [other.id] }]).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(PgQueueValidationError)
  })

  it('takes 1,000 nodes (fan-out and fan-in) in one call', async () => {
    const nodes = [
      { ref: 'split', queue: 'q', type: 'split' },
      ...Array.from({ length: 998 }, (_, i) => ({ ref: `c${i}`, queue: 'q', type: 'chunk', dependsOn: ['split'] })),
      { ref: 'merge', queue: 'q', type: 'merge', dependsOn: Array.from({ length: 998 }, (_, i) => `c${i}`) },
    ]
    const f = await acme.flow(nodes)
    expect(await count('select count(*) as n from S.flow_nodes where flow_id = $1', [f.flowId])).toBe(1000)
    expect(await count("select count(*) as n from S.jobs where flow_id = $1 and state = 'waiting'", [f.flowId])).toBe(999)
  })

  it('joins the caller transaction and vanishes on rollback', async () => {
    const kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool: userPool }) })
    let flowId = ''
    await kysely.transaction().execute(async (trx) => {
      flowId = (await acme.flow([{ ref: 'a', queue: 'q', type: 't' }, { ref: 'b', queue: 'q', type: 't', dependsOn: ['a'] }], { tx: trx })).flowId
      throw new Error('roll back')
    }).catch(() => {})
    expect(await count('select count(*) as n from S.flow_nodes where flow_id = $1', [flowId])).toBe(0)
    const client = await userPool.connect()
    try {
      await client.query('begin')
      const f = await acme.flow([{ ref: 'a', queue: 'q', type: 't' }], { tx: client })
      await client.query('commit')
      expect(await count('select count(*) as n from S.jobs where flow_id = $1', [f.flowId])).toBe(1)
    } finally {
      client.release()
    }
  })

  it('holds a released node of a paused queue and schedules a delayed one', async () => {
    await acme.configureQueue('paused-q', { paused: true })
    const f = await acme.flow([
      { ref: 'a', queue: 'paused-q', type: 't' },
      { ref: 'b', queue: 'q', type: 't', delay: 60_000 },
    ])
    const js = await rows(t, 'select id, state from S.jobs where flow_id = $1', [f.flowId])
    expect(js.find((r) => r.id === f.jobs.a)!.state).toBe('held')
    expect(js.find((r) => r.id === f.jobs.b)!.state).toBe('scheduled')
  })

  it('cancels a flow: waiting and queued jobs to history with the reason, a running one flagged', async () => {
    const f = await acme.flow([
      { ref: 'a', queue: 'q', type: 't' },
      { ref: 'b', queue: 'q', type: 't' },
      { ref: 'c', queue: 'q', type: 't', dependsOn: ['a', 'b'] },
    ])
    await t.admin.query(`update "${t.schema}".jobs set state = 'running', vt = null, lease_owner = 'w/1', lease_expires_at = now() + interval '1 minute' where id = $1`, [f.jobs.a])
    expect(await acme.flows.cancel(f.flowId)).toEqual({ cancelled: 2, cancelRequested: 1 })
    const h = await rows(t, 'select id, state, error, flow_id from S.job_history where flow_id = $1', [f.flowId])
    expect(h).toHaveLength(2)
    expect(h.every((r) => r.state === 'cancelled' && r.error.code === 'FLOW_CANCELLED')).toBe(true)
    const info = await acme.flows.get(f.flowId)
    expect(info!.counts).toEqual({ running: 1, cancelled: 2 })
  })

  it('cancelling one job cancels its waiting descendants, with the reason', async () => {
    const f = await acme.flow([
      { ref: 'a', queue: 'q', type: 't' },
      { ref: 'b', queue: 'q', type: 't', dependsOn: ['a'] },
      { ref: 'c', queue: 'q', type: 't', dependsOn: ['b'] },
      { ref: 'd', queue: 'q', type: 't', dependsOn: ['a'], runOnParentFailure: true },
    ])
    expect(await acme.cancel(f.jobs.a!)).toBe('cancelled')
    const h = await rows(t, 'select id, state, error, flow_id from S.job_history where flow_id = $1 order by id', [f.flowId])
    expect(h.map((r) => r.id).sort()).toEqual([f.jobs.a, f.jobs.b, f.jobs.c].sort())
    expect(h.find((r) => r.id === f.jobs.c).error.code).toBe('PARENT_FAILED')
    const [d] = await rows(t, 'select state from S.jobs where id = $1', [f.jobs.d])
    expect(d.state).toBe('pending')
    const info = await acme.flows.get(f.flowId)
    expect(info!.counts).toEqual({ cancelled: 3, pending: 1 })
    expect(await queues.withTenant('other').flows.get(f.flowId)).toBeNull()
  })
})
