/**
 * Issue 14, item 8: the database itself refuses out-of-range rows (migration 13), so raw SQL on a
 * `queue_user` connection, a hand-made push_jobs() call or the admin cannot store an infinite
 * timestamp, an oversized name or payload, or an absurd max_attempts / priority / every_ms. Every
 * attempt must fail with check_violation (23514), write nothing, and leave other tenants working.
 * Through the public API, the same input (CJK over a byte limit) is a typed PgQueueValidationError.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import pg from 'pg'
import { createIsolatedDatabase, tenantToken, type IsolatedDatabase } from '@pgqueue/testing'
import { migrate, LIMITS, PgQueueValidationError } from '@pgqueue/core'
import { createProducer, type Producer } from '@pgqueue/producer'
import { AttemptCounter, inSchema, rawPush, reportFigure, sqlState } from '../src/harness.js'

const attempts = new AttemptCounter()
let t: IsolatedDatabase
let user: pg.Pool
let q: (text: string) => string

beforeAll(async () => {
  t = await createIsolatedDatabase('limits_db')
  q = inSchema(t.schema)
  await migrate(t.adminUrl, t.schemaOptions)
  user = new pg.Pool({ connectionString: t.userUrl, max: 2 })
})
afterAll(async () => {
  reportFigure('limits-constraints.attempts', attempts.toJSON())
  await user?.end()
  await t.cleanup()
})

/** Runs `sqlText` as the user role in a transaction (scoped to tenant 'a' unless null); returns its SQLSTATE or 'ok'. */
async function asUser(sqlText: string, params: unknown[] = [], tenant: string | null = 'a'): Promise<string> {
  const c = await user.connect()
  try {
    await c.query('begin')
    if (tenant !== null) await c.query(`select set_config('pgqueue.tenant', $1, true), set_config('pgqueue.tenant_token', $2, true)`, [tenant, tenantToken(tenant)])
    return await sqlState(c.query(q(sqlText), params))
  } finally {
    await c.query('rollback')
    c.release()
  }
}

/**
 * A one-job push_jobs() call, signed for its tenant, whose arguments are SQL expressions (so huge values
 * are built by the server, not sent), each overridable; the tenant is given as its JavaScript value.
 */
function pushJobsSql(over: Partial<Record<'tenant' | 'queue' | 'type' | 'key' | 'payload' | 'payloadType' | 'target' | 'priority' | 'runAt' | 'maxAttempts' | 'retryPolicy', string>>): string {
  const tenant = over.tenant ?? 'a'
  const a = {
    queue: `'q'`, type: `'t'`, key: 'null', payload: 'null', payloadType: 'null', target: 'null',
    priority: '0', runAt: 'null', maxAttempts: '3', retryPolicy: 'null', ...over,
  }
  return `select * from S.push_jobs('${tenant}', '${tenantToken(tenant)}', array[gen_random_uuid()], array[${a.queue}]::text[], array[${a.type}]::text[],
    array[${a.key}]::text[], array[${a.payload}]::bytea[], array[${a.payloadType}]::text[], array[${a.target}]::jsonb[],
    array[${a.priority}]::integer[], array[${a.runAt}]::timestamptz[], array[${a.maxAttempts}]::integer[],
    array[${a.retryPolicy}]::jsonb[], array[null]::uuid[], array[null]::uuid[])`
}

const BIG_JSON = `to_jsonb(repeat('x', 9 * 1024 * 1024))`
const cjk = (bytes: number) => `repeat('队', ${Math.ceil(bytes / 3)})`
const cjkValue = (bytes: number) => '队'.repeat(Math.ceil(bytes / 3))

/** Per column of jobs written by push_jobs(): values the database must refuse. */
const BAD_PUSH: [string, Parameters<typeof pushJobsSql>[0]][] = [
  ['tenant over 256 bytes (CJK)', { tenant: cjkValue(LIMITS.tenantId + 1) }],
  ['empty queue', { queue: `''` }],
  ['queue over 128 bytes (CJK, 43 characters)', { queue: cjk(LIMITS.queueName + 1) }],
  ['queue of 8,000 characters', { queue: `repeat('q', 8000)` }],
  ['type of 100,000 characters', { type: `repeat('t', 100000)` }],
  ['key over 512 bytes (CJK)', { key: cjk(LIMITS.key + 1) }],
  ['payload type over 255 bytes', { payloadType: `repeat('p', 256)` }],
  ['payload over 64 MiB', { payload: `convert_to(repeat('x', 64 * 1024 * 1024 + 1), 'UTF8')` }],
  ['target over 8 MiB stored', { target: BIG_JSON }],
  ['retry policy over 8 KiB', { retryPolicy: `jsonb_build_object('type', repeat('x', 9000))` }],
  ['priority above 1,000,000', { priority: '1000001' }],
  ['priority below -1,000,000', { priority: '-1000001' }],
  ['max_attempts 0', { maxAttempts: '0' }],
  ['max_attempts 1e9', { maxAttempts: '1000000000' }],
  ['run_at infinity', { runAt: `'infinity'` }],
  ['run_at -infinity', { runAt: `'-infinity'` }],
  ['run_at before year 1', { runAt: `'0001-12-31 23:00:00+00 BC'` }],
  ['run_at after 9999', { runAt: `'10000-01-01 00:00:00+00'` }],
]

describe('check constraints refuse what JavaScript refuses (raw SQL)', () => {
  it('push_jobs() called by hand as the user role: every bad value is 23514, nothing written', async () => {
    const states: Record<string, string> = {}
    for (const [label, over] of BAD_PUSH) {
      // push_jobs() sets the tenant itself; a transaction already scoped to 'a' would refuse another.
      states[label] = await asUser(pushJobsSql(over), [], over.tenant === undefined ? 'a' : null)
      attempts.add('push_jobs bad value')
    }
    expect(states).toEqual(Object.fromEntries(BAD_PUSH.map(([label]) => [label, '23514'])))
    const { rows } = await t.admin.query(q('select count(*)::int as n from S.jobs'))
    expect(rows[0].n).toBe(0)
    // The limits themselves are accepted.
    expect(await asUser(pushJobsSql({ queue: `repeat('队', 42)`, type: `repeat('t', 128)`, key: `repeat('键', 170)`, payloadType: `repeat('p', 255)`, priority: '-1000000', maxAttempts: '1000', runAt: `'9999-12-31 23:59:59+00'` }))).toBe('ok')
  })

  it('the admin (owner, no row-level security) is refused the same way', async () => {
    const base = `insert into S.jobs (tenant_id, queue, type, state, run_at, max_attempts, priority) values`
    const bad = [
      `${base} ('a', 'q', 't', 'scheduled', 'infinity', 5, 0)`,
      `${base} ('a', 'q', 't', 'scheduled', '-infinity', 5, 0)`,
      `${base} ('a', repeat('队', 43), 't', 'scheduled', now(), 5, 0)`,
      `${base} ('a', 'q', 't', 'scheduled', now(), 1000000000, 0)`,
      `${base} ('a', 'q', 't', 'scheduled', now(), 5, 2000000000)`,
      `${base} ('', 'q', 't', 'scheduled', now(), 5, 0)`,
    ]
    for (const sqlText of bad) {
      expect(await sqlState(t.admin.query(q(sqlText))), sqlText).toBe('23514')
      attempts.add('admin insert bad value')
    }
  })

  it('queues, schedules, worker_metadata and job_history written directly by the user role', async () => {
    const cases: [string, string][] = [
      ['queue name 8,000 characters', `insert into S.queues (tenant_id, queue) values ('a', repeat('q', 8000))`],
      ['queue name over 128 bytes (CJK)', `insert into S.queues (tenant_id, queue) values ('a', repeat('队', 43))`],
      ['display name over 256 bytes', `insert into S.queues (tenant_id, queue, display_name) values ('a', 'q', repeat('名', 86))`],
      ['max_concurrency 2e9', `insert into S.queues (tenant_id, queue, max_concurrency) values ('a', 'q', 2000000000)`],
      ['queue created_at infinity', `insert into S.queues (tenant_id, queue, created_at) values ('a', 'q', 'infinity')`],
      ['every_ms 1e15', `insert into S.schedules (tenant_id, key, queue, type, every_ms, next_run_at) values ('a', 'k', 'q', 't', 1000000000000000, now())`],
      ['every_ms 0', `insert into S.schedules (tenant_id, key, queue, type, every_ms, next_run_at) values ('a', 'k', 'q', 't', 0, now())`],
      ['next_run_at -infinity', `insert into S.schedules (tenant_id, key, queue, type, every_ms, next_run_at) values ('a', 'k', 'q', 't', 60000, '-infinity')`],
      ['anchor_at infinity', `insert into S.schedules (tenant_id, key, queue, type, every_ms, anchor_at, next_run_at) values ('a', 'k', 'q', 't', 60000, 'infinity', now())`],
      ['schedule queue 8,000 characters', `insert into S.schedules (tenant_id, key, queue, type, every_ms, next_run_at) values ('a', 'k', repeat('q', 8000), 't', 60000, now())`],
      ['cron of 8,000 characters', `insert into S.schedules (tenant_id, key, queue, type, cron, timezone, next_run_at) values ('a', 'k', 'q', 't', repeat('*', 8000), 'UTC', now())`],
      ['schedule key over 512 bytes', `insert into S.schedules (tenant_id, key, queue, type, every_ms, next_run_at) values ('a', repeat('键', 171), 'q', 't', 60000, now())`],
      ['schedule priority 1e9', `insert into S.schedules (tenant_id, key, queue, type, every_ms, next_run_at, priority) values ('a', 'k', 'q', 't', 60000, now(), 1000000000)`],
      ['metadata key over 512 bytes', `insert into S.worker_metadata (tenant_id, key, value) values ('a', repeat('键', 171), '1')`],
      ['metadata value over 8 MiB', `insert into S.worker_metadata (tenant_id, key, value) values ('a', 'k', ${BIG_JSON})`],
      ['metadata updated_at infinity', `insert into S.worker_metadata (tenant_id, key, value, updated_at) values ('a', 'k', '1', 'infinity')`],
      // The user role writes no history at all (migration 12): refused before any check.
      ['history finished_at infinity', `insert into S.job_history (tenant_id, id, queue, type, state, attempt, max_attempts, created_at, run_at, finished_at) values ('a', gen_random_uuid(), 'q', 't', 'completed', 1, 1, now(), now(), 'infinity')`],
      ['history run_at -infinity', `insert into S.job_history (tenant_id, id, queue, type, state, attempt, max_attempts, created_at, run_at) values ('a', gen_random_uuid(), 'q', 't', 'completed', 1, 1, now(), '-infinity')`],
      ['history type 100,000 characters', `insert into S.job_history (tenant_id, id, queue, type, state, attempt, max_attempts, created_at, run_at) values ('a', gen_random_uuid(), 'q', repeat('t', 100000), 'completed', 1, 1, now(), now())`],
      ['history max_attempts 1e9', `insert into S.job_history (tenant_id, id, queue, type, state, attempt, max_attempts, created_at, run_at) values ('a', gen_random_uuid(), 'q', 't', 'completed', 1, 1000000000, now(), now())`],
    ]
    const states: Record<string, string> = {}
    for (const [label, sqlText] of cases) {
      states[label] = await asUser(sqlText)
      attempts.add('direct write bad value')
    }
    expect(states).toEqual(Object.fromEntries(cases.map(([label]) => [label, label.startsWith('history') ? '42501' : '23514'])))
    // An update cannot smuggle a bad value into an existing row either.
    const c = await user.connect()
    try {
      await c.query('begin')
      await c.query(`select set_config('pgqueue.tenant', 'a', true), set_config('pgqueue.tenant_token', $1, true)`, [tenantToken('a')])
      await c.query(q(`insert into S.schedules (tenant_id, key, queue, type, every_ms, next_run_at) values ('a', 'ok', 'q', 't', 60000, now())`))
      expect(await sqlState(c.query(q(`update S.schedules set next_run_at = 'infinity' where key = 'ok'`)))).toBe('23514')
      attempts.add('direct write bad value')
    } finally {
      await c.query('rollback')
      c.release()
    }
  })
})

describe('the public API counts bytes where the database indexes text', () => {
  let producer: Producer
  beforeAll(() => {
    producer = createProducer(t.userUrl, { schema: t.schema, poolSize: 1 })
  })
  afterAll(async () => {
    await producer.close()
  })

  it('refuses CJK names over the byte limit with a typed error naming the field, before the database', async () => {
    const queues = producer.queues.withTenant('a')
    const cases: [() => Promise<unknown>, string][] = [
      [() => queues.push({ queue: '队'.repeat(43), type: 't' }), 'queue'],
      [() => queues.push({ queue: 'q', type: '类'.repeat(43) }), 'type'],
      [() => queues.push({ queue: 'q', type: 't', key: '键'.repeat(171) }), 'key'],
      [() => queues.push({ queue: 'q', type: 't', payload: 'x', payloadType: '型'.repeat(86) }), 'payloadType'],
      [() => producer.queues.withTenant('租'.repeat(86)).push({ queue: 'q', type: 't' }), 'tenantId'],
      [() => producer.schedules.withTenant('a').create({ key: '键'.repeat(171), queue: 'q', type: 't', schedule: { every: '1h' } }), 'key'],
    ]
    for (const [fn, field] of cases) {
      const err = await Promise.resolve().then(fn).then(() => undefined, (e: unknown) => e)
      expect(err, field).toBeInstanceOf(PgQueueValidationError)
      expect((err as PgQueueValidationError).field.endsWith(field), (err as PgQueueValidationError).field).toBe(true)
      attempts.add('api CJK over byte limit')
    }
    // At the limit, the same names are accepted and stored.
    const ok = await queues.push({ queue: '队'.repeat(42), type: '类'.repeat(42), key: '键'.repeat(170) })
    expect(ok.outcome).toBe('created')
  })
})
