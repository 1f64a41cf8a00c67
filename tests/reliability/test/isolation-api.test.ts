/**
 * Tenant isolation through every public method of @pgqueue/producer and @pgqueue/stats, as a user login
 * with tenant A, against tenant B's data. Each attempt is counted; B's rows are compared before and after.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import pg from 'pg'
import { createIsolatedDatabase, type IsolatedDatabase } from '@pgqueue/testing'
import { migrate, PgQueueError, PgQueueNotFoundError, PgQueueTenantRequiredError, PgQueueValidationError, uuidv7 } from '@pgqueue/core/internal'
import { createProducer, type Producer, type TenantQueues, type TenantSchedules } from '@pgqueue/producer'
import { Stats } from '@pgqueue/stats'
import { AttemptCounter, inSchema, reportFigure } from '../src/harness.js'

const A = 'tenant-a'
const B = 'tenant-b'
const attempts = new AttemptCounter()

let t: IsolatedDatabase
let q: (text: string) => string
let producer: Producer
let stats: Stats
let qa: TenantQueues
let qb: TenantQueues
let sa: TenantSchedules
let sb: TenantSchedules
const b = { jobId: '', runningId: '', historyId: '', cursor: '' as string | null }

async function snapshotB(): Promise<string> {
  const parts: unknown[] = []
  for (const table of ['jobs', 'job_history', 'queues', 'schedules', 'worker_metadata', 'queue_clocks']) {
    const { rows } = await t.admin.query(q(`select * from S.${table} where tenant_id = $1 order by 1, 2`), [B])
    parts.push(rows.map((r) => ({ ...r, updated_at: undefined })))
  }
  return JSON.stringify(parts)
}

/** Runs an attack: it must resolve to an "absent" answer, or reject with a typed pgqueue error. */
async function attack<T>(category: string, fn: () => Promise<T>, expectAbsent: (v: T) => void): Promise<void> {
  attempts.add(category)
  let value: T
  try {
    value = await fn()
  } catch (err) {
    expect(err, category).toBeInstanceOf(PgQueueError)
    return
  }
  expectAbsent(value)
}

beforeAll(async () => {
  t = await createIsolatedDatabase('isoapi')
  q = inSchema(t.schema)
  await migrate(t.adminUrl, t.schemaOptions)
  producer = createProducer(t.userUrl, { schema: t.schema, poolSize: 2 })
  stats = Stats.create(t.userUrl, { schema: t.schema, poolSize: 1 } as never)
  qa = producer.queues.withTenant(A)
  qb = producer.queues.withTenant(B)
  sa = producer.schedules.withTenant(A)
  sb = producer.schedules.withTenant(B)
  for (const [queues, schedules, tenant] of [[qa, sa, A], [qb, sb, B]] as const) {
    const pushed = await queues.pushMany([
      { queue: 'emails', type: 'send', key: `${tenant}-k1`, payload: `${tenant} secret`, target: { owner: tenant } },
      { queue: 'emails', type: 'send', key: 'shared-key' },
      { queue: 'emails', type: 'send', key: 'will-run' },
      { queue: 'later', type: 'send', delay: 3_600_000 },
    ])
    await queues.configureQueue('emails', { maxConcurrency: 50, displayName: `${tenant} emails` })
    await schedules.create({ key: 'nightly', queue: 'emails', type: 'build', schedule: { cron: '0 3 * * *', timezone: 'Europe/Warsaw' } })
    await schedules.create({ key: `${tenant}-only`, queue: 'emails', type: 'build', schedule: { every: '15m' } })
    await queues.workerMetadata.set('cfg', { secret: tenant })
    await queues.workerMetadata.set(`${tenant}-only`, 1)
    const failedId = uuidv7()
    await t.admin.query(
      q(`insert into S.job_history (tenant_id, id, queue, type, state, attempt, max_attempts, created_at, run_at, error)
         values ($1, $2, 'emails', 'send', 'failed', 3, 3, now(), now(), '{"m":"boom"}')`),
      [tenant, failedId],
    )
    if (tenant === B) {
      b.jobId = pushed[0]!.id
      b.runningId = pushed[2]!.id
      b.historyId = failedId
    }
  }
  await t.admin.query(q(`update S.jobs set state = 'running', lease_owner = 'w1', lease_expires_at = now() + interval '1 hour' where tenant_id = $1 and key = 'will-run'`), [B])
  b.cursor = (await qb.list({ limit: 1 })).nextCursor
})

afterAll(async () => {
  reportFigure('isolation-api attempts', attempts.toJSON())
  await producer?.close()
  await stats?.close()
  await t?.cleanup()
})

describe('tenant A, through the public API, against tenant B', () => {
  it('reads nothing of B', async () => {
    const before = await snapshotB()
    for (const id of [b.jobId, b.runningId, b.historyId]) {
      await attack('get', () => qa.get(id), (v) => expect(v).toBeNull())
    }
    await attack('get', () => qa.get({ queue: 'emails', key: `${B}-k1` }), (v) => expect(v).toBeNull())
    // Keys both tenants use resolve to A's own job (B's 'will-run' is running, A's waits).
    await attack('get', () => qa.get({ queue: 'emails', key: 'shared-key' }), (v) => expect(v?.tenantId).toBe(A))
    await attack('get', () => qa.get({ queue: 'emails', key: 'will-run' }), (v) => { expect(v?.tenantId).toBe(A); expect((v as { state: string }).state).not.toBe('running') })
    for (const opts of [{}, { queue: 'emails' }, { state: 'running' as const }, { state: ['pending', 'scheduled', 'held', 'running'] as never }, { limit: 1000 }]) {
      await attack('list', () => qa.list(opts), (v) => expect(v.items.filter((j) => j.tenantId !== A)).toEqual([]))
    }
    // A cursor taken from B's listing only positions A's own listing.
    await attack('list', () => qa.list({ cursor: b.cursor }), (v) => expect(v.items.filter((j) => j.tenantId !== A)).toEqual([]))
    for (const opts of [{}, { queue: 'emails' }, { state: 'failed' as const }]) {
      await attack('history', () => qa.history(opts), (v) => expect(v.items.filter((h) => h.tenantId !== A)).toEqual([]))
    }
    await attack('queues', () => qa.getQueue('emails'), (v) => expect(v?.displayName).toBe(`${A} emails`))
    await attack('queues', () => qa.listQueues(), (v) => expect(v.items.map((c) => c.displayName)).toEqual([`${A} emails`]))
    await attack('schedules', () => sa.get(`${B}-only`), (v) => expect(v).toBeNull())
    await attack('schedules', () => sa.get('nightly'), (v) => expect(v?.tenantId).toBe(A))
    await attack('schedules', () => sa.list(), (v) => expect(v.items.map((s) => s.key).sort()).toEqual([`${A}-only`, 'nightly'].sort()))
    await attack('schedules', () => sa.runs(`${B}-only`), (v) => expect(v.items).toEqual([]))
    await attack('worker metadata', () => qa.workerMetadata.get(`${B}-only`), (v) => expect(v ?? null).toBeNull())
    await attack('worker metadata', () => qa.workerMetadata.get('cfg'), (v) => expect(v).toEqual({ secret: A }))
    await attack('worker metadata', () => qa.workerMetadata.list(), (v) => expect(v.items.map((e) => e.key).sort()).toEqual([`${A}-only`, 'cfg'].sort()))
    await attack('worker metadata', () => qa.workerMetadata.list({ prefix: B }), (v) => expect(v.items).toEqual([]))
    expect(await snapshotB()).toBe(before)
  })

  it('changes nothing of B', async () => {
    const before = await snapshotB()
    for (const ref of [b.jobId, b.runningId, { queue: 'emails', key: `${B}-k1` }]) {
      await attack('delete', () => qa.delete(ref), (v) => expect(v).toBe('not_found'))
      await attack('cancel', () => qa.cancel(ref), (v) => expect(v).toBe('not_found'))
    }
    for (const id of [b.historyId, b.jobId]) {
      attempts.add('retry')
      await expect(qa.retry(id)).rejects.toBeInstanceOf(PgQueueNotFoundError)
    }
    await attack('schedules', () => sa.delete(`${B}-only`), (v) => expect(v).toBe(false))
    await attack('schedules', () => sa.pause(`${B}-only`), (v) => expect(v).toBeNull())
    await attack('schedules', () => sa.resume(`${B}-only`), (v) => expect(v).toBeNull())
    await attack('worker metadata', () => qa.workerMetadata.delete(`${B}-only`), (v) => expect(v).toBe(false))
    expect(await snapshotB()).toBe(before)

    // Writes under the same names land in A, never in B.
    await attack('push same key', () => qa.push({ queue: 'emails', type: 'send', key: `${B}-k1`, payload: 'mine' }), (v) => expect(v.outcome).toBe('created'))
    await attack('push same key', () => qa.pushMany([{ queue: 'emails', type: 'send', key: 'will-run' }]), (v) => expect(v[0]!.outcome).toBe('replaced'))
    await attack('queues', () => qa.configureQueue('emails', { paused: true, maxConcurrency: 1 }), (v) => expect(v.paused).toBe(true))
    await attack('queues', () => qa.configureQueue('emails', { paused: false, maxConcurrency: null }), (v) => expect(v.paused).toBe(false))
    await attack('schedules', () => sa.create({ key: `${B}-only`, queue: 'emails', type: 'x', schedule: { every: '1h' } }), (v) => expect(v.tenantId).toBe(A))
    await attack('schedules', () => sa.pause('nightly'), (v) => expect(v?.paused).toBe(true))
    await attack('worker metadata', () => qa.workerMetadata.set(`${B}-only`, 'mine'), (v) => expect(v).toBeTruthy())
    expect(await snapshotB()).toBe(before)
  })

  it('cannot push into B through a transaction scoped to B, nor into A through one scoped to B', async () => {
    const before = await snapshotB()
    const pool = new pg.Pool({ connectionString: t.userUrl, max: 1 })
    const c = await pool.connect()
    try {
      await c.query('begin')
      await c.query(`select set_config('pgqueue.tenant', $1, true)`, [B])
      attempts.add('tx of another tenant')
      await expect(qa.push({ queue: 'emails', type: 'send' }, { tx: c })).rejects.toThrow()
      await c.query('rollback')
    } finally {
      c.release()
      await pool.end()
    }
    expect(await snapshotB()).toBe(before)
  })

  it('stats of A count only A', async () => {
    const before = await snapshotB()
    const mine = stats.forTenant(A)
    await attack('stats', () => mine.queues(), (v) => {
      const emails = v.find((s) => s.queue === 'emails') as unknown as Record<string, unknown>
      expect(JSON.stringify(v)).not.toContain(B)
      expect(emails).toBeTruthy()
    })
    await attack('stats', () => mine.latency(), (v) => expect(JSON.stringify(v)).not.toContain(B))
    await attack('stats', () => mine.schedules(), (v) => expect(JSON.stringify(v)).not.toContain(B))
    await attack('stats', () => mine.histogram({ queue: 'emails' } as never), (v) => expect(JSON.stringify(v)).not.toContain(B))
    // The counts equal what A itself sees (B has a running job; A has none).
    const own = (await qa.list({ limit: 1000 })).items
    const counted = await mine.queues()
    const live = (queue: string, state: string) => own.filter((j) => j.queue === queue && j.state === state).length
    for (const s of counted) {
      expect(s.running, s.queue).toBe(0)
      expect(s.pending + s.scheduled, s.queue).toBe(own.filter((j) => j.queue === s.queue).length)
    }
    expect(counted.find((s) => s.queue === 'emails')?.failed).toBe(1)
    reportFigure('isolation-api stats of A', { ownLiveJobs: own.length, emailsHeldOrPending: live('emails', 'held') + live('emails', 'pending') })
    // As the user role without a tenant: nothing, or a typed error.
    await attack('stats', () => stats.queues(), (v) => expect(v.every((s) => s.pending + s.scheduled + s.running + s.completed + s.failed === 0)).toBe(true))
    expect(await snapshotB()).toBe(before)
  })

  it('rejects a missing tenant with a typed error before any query', async () => {
    for (const tenant of ['', undefined, null, 42, 'x'.repeat(257), 'a\u0000b']) {
      attempts.add('no tenant')
      expect(() => producer.queues.withTenant(tenant as never)).toThrow(tenant === '' || tenant == null ? PgQueueTenantRequiredError : PgQueueValidationError)
      attempts.add('no tenant')
      expect(() => producer.schedules.withTenant(tenant as never)).toThrow(PgQueueError)
      attempts.add('no tenant')
      expect(() => stats.forTenant(tenant as never)).toThrow(PgQueueError)
    }
  })
})

describe('hostile strings through the API', () => {
  const strings = [`a'b`, `a\\b`, `"; drop table jobs; --`, `' or '1'='1`, `%`, `_`, `ümlaut`, 'e\u0301', '\u00e9', '🦀', '\u202e', 'tab\tline\n', ' trail ', '$1', "set_config('pgqueue.tenant','tenant-b',true)"]

  /** Tenant ids with edge whitespace, controls or invisible characters are refused (core README); the others are stored literally. */
  const refusedAsTenant = new Set(['\u202e', 'tab\tline\n', ' trail '])

  it('stores and matches tenants, queues and keys literally', async () => {
    for (const s of strings) {
      attempts.add('hostile strings')
      if (refusedAsTenant.has(s)) expect(() => producer.queues.withTenant(s)).toThrow(PgQueueValidationError)
      const tenant = refusedAsTenant.has(s) ? `visible:${encodeURIComponent(s)}` : s
      const tq = producer.queues.withTenant(tenant)
      const pushed = await tq.push({ queue: s, type: s, key: s, payload: s, target: { s } })
      const got = await tq.get({ queue: s, key: s })
      expect(got).toMatchObject({ id: pushed.id, tenantId: tenant, queue: s, type: s, key: s, target: { s } })
      expect(got!.payload!.toString('utf8')).toBe(s)
      expect((await tq.list()).items.map((j) => j.tenantId)).toEqual([tenant])
      attempts.add('hostile strings')
      const sc = await producer.schedules.withTenant(tenant).create({ key: s, queue: s, type: s, schedule: { every: '1h' }, target: { s } })
      expect(sc).toMatchObject({ key: s, queue: s, type: s, tenantId: tenant })
      attempts.add('hostile strings')
      await tq.workerMetadata.set(s, s)
      expect(await tq.workerMetadata.get(s)).toBe(s)
    }
  })

  it('rejects NUL anywhere with PgQueueValidationError naming the field, writing nothing', async () => {
    const before = (await t.admin.query(q(`select (select count(*) from S.jobs) + (select count(*) from S.schedules) + (select count(*) from S.worker_metadata) as n`))).rows[0].n
    const nul = 'a\u0000b'
    const cases: Array<[string, () => Promise<unknown>]> = [
      ['item.queue', () => qa.push({ queue: nul, type: 't' })],
      ['item.type', () => qa.push({ queue: 'q', type: nul })],
      ['item.key', () => qa.push({ queue: 'q', type: 't', key: nul })],
      ['item.payloadType', () => qa.push({ queue: 'q', type: 't', payload: 'x', payloadType: nul })],
      ['item.target', () => qa.push({ queue: 'q', type: 't', target: { s: nul } })],
      ['items[1].key', () => qa.pushMany([{ queue: 'q', type: 't' }, { queue: 'q', type: 't', key: nul }])],
      ['key', () => sa.create({ key: nul, queue: 'q', type: 't', schedule: { every: '1h' } })],
      ['queue', () => sa.create({ key: 'k', queue: nul, type: 't', schedule: { every: '1h' } })],
      ['key', () => qa.workerMetadata.set(nul, 1)],
      ['ref.key', () => qa.get({ queue: 'q', key: nul })],
    ]
    for (const [field, fn] of cases) {
      attempts.add('NUL')
      const err = await fn().then(() => null, (e: unknown) => e)
      expect(err, field).toBeInstanceOf(PgQueueValidationError)
      expect((err as PgQueueValidationError).field, field).toMatch(new RegExp(field.split('.').pop()!.replace(/[[\]]/g, '\\$&')))
    }
    const after = (await t.admin.query(q(`select (select count(*) from S.jobs) + (select count(*) from S.schedules) + (select count(*) from S.worker_metadata) as n`))).rows[0].n
    expect(after).toBe(before)
  })
})

describe('a tenant holding its own transaction open', () => {
  it('does not lock the row of its running job by pushing its key again in that transaction', async () => {
    const [job] = await qa.pushMany([{ queue: 'held-key', type: 't', key: 'busy' }])
    await t.admin.query(q(`update S.jobs set state = 'running', vt = null, attempt = 1, lease_owner = 'w-held', lease_expires_at = now() + interval '1 minute' where id = $1`), [job!.id])
    const pool = new pg.Pool({ connectionString: t.userUrl, max: 1 })
    const client = await pool.connect()
    try {
      await client.query('begin')
      attempts.add('row lock through push')
      const [again] = await qa.pushMany([{ queue: 'held-key', type: 't', key: 'busy' }], { tx: client })
      expect(again!.outcome).toBe('running')
      // The worker's renewal and completion need this row: nobody may wait on A's open transaction.
      const { rows } = await t.admin.query(q(`select id from S.jobs where id = $1 for update nowait`), [job!.id])
      expect(rows).toHaveLength(1)
    } finally {
      await client.query('rollback')
      client.release()
      await pool.end()
      await t.admin.query(q(`delete from S.jobs where id = $1`), [job!.id])
    }
  })
})

