import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import pg from 'pg'
import type { IsolatedDatabase } from '@pgqueue/testing'
import { PgQueueNotFoundError, PgQueueTenantAccessError, PgQueueTenantRequiredError, PgQueueValidationError } from '@pgqueue/core'
import { createProducer, Queues, type Producer } from '../src/index.js'
import { insertHistory, markRunning, rows, setup } from './helpers.js'

let t: IsolatedDatabase
let userPool: pg.Pool
let producer: Producer

beforeAll(async () => {
  ;({ t, userPool } = await setup('producer_iso'))
  producer = createProducer(userPool, { schema: t.schema })
})
afterAll(async () => {
  await producer?.close()
  await userPool?.end()
  await t?.cleanup()
})

describe('tenant isolation through every method', () => {
  it('tenant A cannot see, replace, delete, retry, cancel or configure anything of tenant B', async () => {
    const a = producer.queues.withTenant('tenant-a')
    const b = producer.queues.withTenant('tenant-b')
    const waiting = await b.push({ queue: 'q', type: 't', key: 'shared-key', payload: 'b-secret' })
    const running = await b.push({ queue: 'q', type: 't', key: 'running-key' })
    await markRunning(t, running.id)
    const failed = await insertHistory(t, { tenant: 'tenant-b', queue: 'q', state: 'failed' })
    await b.configureQueue('q', { displayName: 'B queue' })
    await b.workerMetadata.set('secret', { b: true })
    await producer.schedules.withTenant('tenant-b').create({ key: 'nightly', queue: 'q', type: 't', schedule: { every: '1h' } })
    const snapshot = async () => ({
      jobs: await rows(t, `select * from S.jobs where tenant_id = 'tenant-b' order by id`),
      history: await rows(t, `select * from S.job_history where tenant_id = 'tenant-b' order by id`),
      queues: await rows(t, `select * from S.queues where tenant_id = 'tenant-b'`),
      meta: await rows(t, `select * from S.worker_metadata where tenant_id = 'tenant-b'`),
      schedules: await rows(t, `select * from S.schedules where tenant_id = 'tenant-b'`),
    })
    const before = await snapshot()

    // Reads return nothing.
    expect(await a.get(waiting.id)).toBeNull()
    expect(await a.get(running.id)).toBeNull()
    expect(await a.get(failed)).toBeNull()
    expect(await a.get({ queue: 'q', key: 'shared-key' })).toBeNull()
    expect((await a.list()).items).toEqual([])
    expect((await a.history()).items).toEqual([])
    expect(await a.getQueue('q')).toBeNull()
    expect((await a.listQueues()).items).toEqual([])
    expect(await a.workerMetadata.get('secret')).toBeUndefined()
    expect((await a.workerMetadata.list()).items).toEqual([])
    const sa = producer.schedules.withTenant('tenant-a')
    expect(await sa.get('nightly')).toBeNull()
    expect((await sa.list()).items).toEqual([])
    expect((await sa.runs('nightly')).items).toEqual([])

    // Writes addressed at B's rows change nothing of B.
    expect(await a.delete(waiting.id)).toBe('not_found')
    expect(await a.delete({ queue: 'q', key: 'shared-key' })).toBe('not_found')
    expect(await a.cancel(waiting.id)).toBe('not_found')
    expect(await a.cancel(running.id)).toBe('not_found')
    await expect(a.retry(failed)).rejects.toBeInstanceOf(PgQueueNotFoundError)
    expect(await a.workerMetadata.delete('secret')).toBe(false)
    expect(await sa.pause('nightly')).toBeNull()
    expect(await sa.resume('nightly')).toBeNull()
    expect(await sa.delete('nightly')).toBe(false)
    // Same key in A creates A's own job; B's job with that key is untouched.
    const mine = await a.push({ queue: 'q', type: 't', key: 'shared-key' })
    expect(mine.outcome).toBe('created')
    expect(mine.id).not.toBe(waiting.id)
    expect((await a.pushMany([{ queue: 'q', type: 't', key: 'running-key' }]))[0]!.outcome).toBe('created')
    // Configuring a queue of the same name in A makes A's own row and holds only A's jobs.
    await a.configureQueue('q', { paused: true })
    await a.workerMetadata.set('secret', { a: true })

    expect(await snapshot()).toEqual(before)
    expect(await rows(t, `select state from S.jobs where id = $1`, [waiting.id])).toEqual([{ state: 'pending' }])
  })

  it("tenant A cannot read, cancel, release or attach to tenant B's flow", async () => {
    const a = producer.queues.withTenant('tenant-a')
    const b = producer.queues.withTenant('tenant-b')
    const f = await b.flow([
      { ref: 'root', queue: 'fq', type: 't', payload: 'b-secret' },
      { ref: 'child', queue: 'fq', type: 't', dependsOn: ['root'] },
    ])
    const snapshot = async () => ({
      jobs: await rows(t, `select * from S.jobs where flow_id = $1 order by id`, [f.flowId]),
      nodes: await rows(t, `select * from S.flow_nodes where flow_id = $1 order by id`, [f.flowId]),
      history: await rows(t, `select * from S.job_history where flow_id = $1`, [f.flowId]),
    })
    const before = await snapshot()
    expect(await a.flows.get(f.flowId)).toBeNull()
    expect(await a.get(f.jobs.child!)).toBeNull()
    expect(await a.flows.cancel(f.flowId)).toEqual({ cancelled: 0, cancelRequested: 0 })
    expect(await a.cancel(f.jobs.root!)).toBe('not_found')
    // A dependency can only name a ref of the same call: B's job id is an unknown ref.
    await expect(a.flow([{ ref: 'x', queue: 'fq', type: 't', dependsOn: [f.jobs.root!] }])).rejects.toBeInstanceOf(PgQueueValidationError)
    expect(await snapshot()).toEqual(before)
    expect(before.jobs.find((j) => j.id === f.jobs.child).state).toBe('waiting')
  })

  it('a transaction scoped to one tenant cannot push into another', async () => {
    const client = await userPool.connect()
    try {
      await client.query('begin')
      await client.query(`select set_config('pgqueue.tenant', 'tenant-b', true)`)
      const err = await producer.queues.withTenant('tenant-a').push({ queue: 'q', type: 't' }, { tx: client }).catch((e) => e)
      expect(err).toBeInstanceOf(PgQueueTenantAccessError)
      expect(err.tenantId).toBe('tenant-a')
    } finally {
      await client.query('rollback')
      client.release()
    }
  })

  it('refuses a client without tenant context', () => {
    for (const bad of ['', undefined, null]) {
      expect(() => producer.queues.withTenant(bad as never)).toThrow(PgQueueTenantRequiredError)
      expect(() => producer.schedules.withTenant(bad as never)).toThrow(PgQueueTenantRequiredError)
    }
    expect(() => producer.queues.withTenant(42 as never)).toThrow(PgQueueValidationError)
    expect(() => producer.queues.withTenant('x'.repeat(257))).toThrow(PgQueueValidationError)
  })

  it('a user-role connection without tenant context sees nothing', async () => {
    const r = await userPool.query(`select count(*)::int as n from "${t.schema}".jobs`)
    expect(r.rows).toEqual([{ n: 0 }])
  })
})

describe('bad input', () => {
  it('names the field and writes nothing', async () => {
    const q = producer.queues.withTenant('tenant-bad')
    const cases: Array<[unknown, string]> = [
      [{ queue: '', type: 't' }, 'item.queue'],
      [{ queue: 'x'.repeat(129), type: 't' }, 'item.queue'],
      [{ queue: 'q', type: 'a\u0000b' }, 'item.type'],
      [{ queue: 'q', type: 't', key: '' }, 'item.key'],
      [{ queue: 'q', type: 't', key: 'k'.repeat(513) }, 'item.key'],
      [{ queue: 'q', type: 't', delay: -1 }, 'item.delay'],
      [{ queue: 'q', type: 't', delay: 1.5 }, 'item.delay'],
      [{ queue: 'q', type: 't', delay: 1, runAt: new Date() }, 'item.delay'],
      [{ queue: 'q', type: 't', runAt: new Date('nope') }, 'item.runAt'],
      [{ queue: 'q', type: 't', priority: 1.5 }, 'item.priority'],
      [{ queue: 'q', type: 't', priority: 10_000_000 }, 'item.priority'],
      [{ queue: 'q', type: 't', target: { f: () => 1 } }, 'item.target'],
      [{ queue: 'q', type: 't', target: 10n }, 'item.target'],
      [{ queue: 'q', type: 't', payload: (() => 42) as never }, 'item.payload'],
      [{ queue: 'q', type: 't', payload: 'x'.repeat(11) }, 'item.payload'],
      [{ queue: 'q', type: 't', payloadType: '' }, 'item.payloadType'],
      [{ queue: 'q', type: 't', retryPolicy: { type: 'fibonacci', delayMs: 1, maxAttempts: 2 } }, 'item.retryPolicy.type'],
      [{ queue: 'q', type: 't', retryPolicy: { type: 'constant', delayMs: 1, maxAttempts: 0 } }, 'item.retryPolicy.maxAttempts'],
      [null, 'item'],
    ]
    const small = Queues.create(userPool, { schema: t.schema, payloadLimitBytes: 10 }).withTenant('tenant-bad')
    for (const [item, field] of cases) {
      const err = await small.push(item as never).catch((e) => e)
      expect(err, field).toBeInstanceOf(PgQueueValidationError)
      expect(err.field, JSON.stringify(item, (_k, v) => (typeof v === 'bigint' ? 'bigint' : v))).toBe(field)
    }
    await expect(q.get('not-a-uuid')).rejects.toMatchObject({ field: 'ref' })
    await expect(q.get({ queue: 'q' } as never)).rejects.toMatchObject({ field: 'ref.key' })
    await expect(q.list({ state: 'done' as never })).rejects.toMatchObject({ field: 'state' })
    await expect(q.list({ limit: 0 })).rejects.toMatchObject({ field: 'limit' })
    await expect(q.list({ cursor: 'garbage' })).rejects.toMatchObject({ field: 'cursor' })
    await expect(q.history({ since: 'yesterday' as never })).rejects.toMatchObject({ field: 'since' })
    await expect(q.pushMany('x' as never)).rejects.toMatchObject({ field: 'items' })
    expect(() => Queues.create(userPool, { schema: 'Bad-Schema' })).toThrow(PgQueueValidationError)
    expect(() => Queues.create(userPool, { payloadLimitBytes: -1 })).toThrow(PgQueueValidationError)
    expect(() => Queues.create('')).toThrow(PgQueueValidationError)
    expect(await rows(t, `select count(*)::int as n from S.jobs where tenant_id = 'tenant-bad'`)).toEqual([{ n: 0 }])
  })

  it('throws PgQueueStoppedError after close', async () => {
    const q = Queues.create(userPool, { schema: t.schema })
    const tq = q.withTenant('x')
    await q.close()
    await expect(tq.push({ queue: 'q', type: 't' })).rejects.toMatchObject({ code: 'STOPPED' })
    expect(() => q.withTenant('x')).toThrow(/stopped/)
    expect((await userPool.query('select 1 as one')).rows).toEqual([{ one: 1 }]) // a pool passed in stays open
  })
})

describe('a producer on a login that sees every tenant', () => {
  it('warns once, naming the reason, for a superuser and a worker-role login; never for a user-role login', async () => {
    const { waitFor } = await import('@pgqueue/testing')
    for (const [label, url, expected] of [
      ['superuser', t.adminUrl, /bypasses row-level security/],
      ['worker role', t.workerUrl, new RegExp(`member of ${t.workerRole}`)],
      ['user role', t.userUrl, null],
    ] as const) {
      const warnings: string[] = []
      const logger = { debug() {}, info() {}, error() {}, warn: (_fields: object, m: string) => warnings.push(m) }
      const p = createProducer(url, { schema: t.schema, poolSize: 1, logger })
      try {
        const tq = p.queues.withTenant('tenant-w')
        await tq.push({ queue: 'warn', type: 't' })
        await tq.list({ queue: 'warn' })
        if (expected === null) {
          await new Promise((r) => setTimeout(r, 200))
          expect(warnings, label).toEqual([])
        } else {
          await waitFor(() => warnings.length > 0, { message: `${label} warning` })
          expect(warnings, label).toHaveLength(1)
          expect(warnings[0], label).toMatch(expected)
          expect(warnings[0], label).toMatch(/member of the user role/)
        }
      } finally {
        await p.close()
      }
    }
  })
})
