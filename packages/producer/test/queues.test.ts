import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import pg from 'pg'
import { Kysely, PostgresDialect } from 'kysely'
import type { IsolatedDatabase } from '@pgqueue/testing'
import { ERROR_CODES, JOB_HISTORY_COLUMNS, PgQueueJobRunningError, PgQueueNotFoundError, PgQueueValidationError, type Database } from '@pgqueue/core/internal'
import { Queues, type TenantQueues } from '../src/index.js'
import { chunkRows } from '../src/tenant-queues.js'
import { insertHistory, markRunning, rows, setup } from './helpers.js'

let t: IsolatedDatabase
let userPool: pg.Pool
let queues: Queues
let acme: TenantQueues

beforeAll(async () => {
  ;({ t, userPool } = await setup('producer_queues'))
  queues = Queues.create(userPool, { schema: t.schema })
  acme = queues.withTenant('acme')
})
afterAll(async () => {
  await queues?.close()
  await userPool?.end()
  await t?.cleanup()
})

describe('push', () => {
  it('stores a job cost, and rejects a bad one writing nothing', async () => {
    const costly = await acme.pushMany([{ queue: 'costs', type: 't', cost: 3 }, { queue: 'costs', type: 't' }])
    const stored = await rows(t, 'select id, cost from S.jobs where queue = $1 order by id', ['costs'])
    expect(stored.map((r) => r.cost).sort()).toEqual([1, 3])
    expect(stored.find((r) => r.id === costly[0]!.id)!.cost).toBe(3)
    for (const cost of [0, -1, 1.5, Number.NaN, Infinity, 2_000_000, '2']) {
      await expect(acme.pushMany([{ queue: 'costs', type: 't' }, { queue: 'costs', type: 't', cost: cost as number }])).rejects.toMatchObject({
        name: PgQueueValidationError.name, field: 'items[1].cost',
      })
    }
    expect(await rows(t, 'select id from S.jobs where queue = $1', ['costs'])).toHaveLength(2)
  })

  it('inserts one pending job with every field', async () => {
    const res = await acme.push({
      queue: 'emails', type: 'send', payload: Buffer.from('hi'), payloadType: 'text/plain', target: { to: 'a@b.c' }, priority: 3,
      retryPolicy: { type: 'constant', delayMs: 1000, maxAttempts: 7 },
    })
    expect(res).toMatchObject({ queue: 'emails', key: null, state: 'pending', outcome: 'created' })
    const [row] = await rows(t, 'select * from S.jobs where id = $1', [res.id])
    expect(row).toMatchObject({
      tenant_id: 'acme', queue: 'emails', type: 'send', state: 'pending', priority: 3, payload_type: 'text/plain',
      target: { to: 'a@b.c' }, max_attempts: 7, attempt: 0, retry_policy: { type: 'constant', delayMs: 1000, maxAttempts: 7 },
    })
    expect(row.payload.toString()).toBe('hi')
    expect(row.vt).not.toBeNull()
    const job = await acme.get(res.id)
    expect(job).toMatchObject({ id: res.id, tenantId: 'acme', state: 'pending', target: { to: 'a@b.c' }, maxAttempts: 7 })
  })

  it('stores a string payload as UTF-8 and delays with delay or runAt', async () => {
    const a = await acme.push({ queue: 'later', type: 't', payload: 'zażółć', delay: 60_000 })
    expect(a.state).toBe('scheduled')
    const runAt = new Date(Date.now() + 3_600_000)
    const b = await acme.push({ queue: 'later', type: 't', runAt })
    expect(b.state).toBe('scheduled')
    expect(b.runAt.getTime()).toBe(runAt.getTime())
    const [row] = await rows(t, 'select payload, payload_type, vt from S.jobs where id = $1', [a.id])
    expect(row.payload.toString('utf8')).toBe('zażółć')
    expect(row.payload_type).toBe('text/plain; charset=utf-8')
    expect(row.vt).toBeNull()
  })

  it('stores a JSON value as application/json and gives it back decoded as data', async () => {
    const value = { user: 42, tags: ['a', 'ß'], nested: { ok: true } }
    const pushed = await acme.push({ queue: 'json', type: 't', payload: value })
    const [row] = await rows(t, 'select payload, payload_type from S.jobs where id = $1', [pushed.id])
    expect(row.payload_type).toBe('application/json')
    expect(JSON.parse(row.payload.toString('utf8'))).toEqual(value)
    const job = await acme.get(pushed.id)
    expect(job).toMatchObject({ kind: 'live', data: value })
    const text = await acme.push({ queue: 'json', type: 't', payload: 'plain' })
    expect(await acme.get(text.id)).toMatchObject({ data: 'plain' })
    const bytes = await acme.push({ queue: 'json', type: 't', payload: Buffer.from([1, 2]) })
    expect(((await acme.get(bytes.id)) as { data: Buffer }).data).toEqual(Buffer.from([1, 2]))
    await expect(acme.push({ queue: 'json', type: 't', payload: { f: () => 1 } as never })).rejects.toMatchObject({ field: 'item.payload' })
    await expect(acme.push({ queue: 'json', type: 't', payload: { big: 'x'.repeat(100) } }, {})).resolves.toBeDefined()
    const small = Queues.create(userPool, { schema: t.schema, payloadLimitBytes: 10 })
    await expect(small.withTenant('acme').push({ queue: 'json', type: 't', payload: { big: 'x'.repeat(100) } })).rejects.toMatchObject({ field: 'item.payload' })
    await small.close()
  })

  it('pushMany splits by bytes as well as rows, all or nothing, so large payloads never make one giant statement', async () => {
    const q = Queues.create(userPool, { schema: t.schema, pushChunkBytes: 256 * 1024 })
    try {
      const items = Array.from({ length: 40 }, (_, i) => ({ queue: 'big', type: 't', payload: Buffer.alloc(100 * 1024, i) }))
      const pushed = await q.withTenant('acme').pushMany(items)
      expect(pushed).toHaveLength(40)
      const [row] = await rows(t, `select count(*)::int as n, sum(octet_length(payload))::bigint as bytes from S.jobs where queue = 'big'`)
      expect(row).toMatchObject({ n: 40, bytes: String(40 * 100 * 1024) })
      const sizes = chunkRows(items.map((it, i) => ({ payload: it.payload, target: i === 0 ? '{"a":1}' : null }) as never), 1000, 256 * 1024).map((c) => c.length)
      expect(sizes).toEqual([2, ...Array(19).fill(2)])
      expect(chunkRows([{ payload: Buffer.alloc(1024), target: null } as never], 1000, 10).map((c) => c.length)).toEqual([1])
    } finally {
      await q.close()
    }
  })

  it('takes max_attempts from the queue policy, else the default', async () => {
    const plain = await acme.push({ queue: 'defaults', type: 't' })
    await acme.configureQueue('with-policy', { retryPolicy: { type: 'linear', delayMs: 10, maxAttempts: 2 } })
    const fromQueue = await acme.push({ queue: 'with-policy', type: 't' })
    const r = await rows(t, 'select id, max_attempts, retry_policy from S.jobs where id = any($1)', [[plain.id, fromQueue.id]])
    expect(r.find((x) => x.id === plain.id)).toMatchObject({ max_attempts: 5, retry_policy: null })
    expect(r.find((x) => x.id === fromQueue.id)).toMatchObject({ max_attempts: 2, retry_policy: null })
  })

  it('is exactly one query: no BEGIN, set_config or COMMIT', async () => {
    const seen: string[] = []
    const pool = new pg.Pool({ connectionString: t.userUrl, max: 1 })
    pool.on('connect', (client) => {
      const orig = client.query.bind(client) as (...a: unknown[]) => unknown
      ;(client as unknown as { query: unknown }).query = (...args: unknown[]) => {
        const first = args[0] as string | { text: string }
        seen.push(typeof first === 'string' ? first : first.text)
        return orig(...args)
      }
    })
    const q = Queues.create(pool, { schema: t.schema })
    try {
      // The first call of a producer also checks, once and beside it, whether its login is tenant-scoped.
      await q.withTenant('acme').push({ queue: 'rt', type: 't', key: 'warm-up' })
      await new Promise((r) => setTimeout(r, 100))
      seen.length = 0
      await q.withTenant('acme').push({ queue: 'rt', type: 't', key: 'k' })
      expect(seen).toHaveLength(1)
      expect(seen[0]).toMatch(/^select .* from "[a-z0-9_]+"\.push_jobs\(\$1, .*\$15\)$/)
    } finally {
      await q.close()
      await pool.end()
    }
  })
})

describe('replace by key', () => {
  it('replaces a waiting job in place and resets its attempts', async () => {
    const first = await acme.push({ queue: 'emails', type: 'send', key: 'welcome-42', payload: 'v1', target: { v: 1 } })
    await t.admin.query(`update "${t.schema}".jobs set attempt = 2, last_error = '{"x":1}' where id = $1`, [first.id])
    const second = await acme.push({ queue: 'emails', type: 'send2', key: 'welcome-42', payload: 'v2', target: { v: 2 }, priority: 9 })
    expect(second).toMatchObject({ id: first.id, outcome: 'replaced', state: 'pending' })
    const r = await rows(t, `select * from S.jobs where tenant_id = 'acme' and queue = 'emails' and key = 'welcome-42'`)
    expect(r).toHaveLength(1)
    expect(r[0]).toMatchObject({ type: 'send2', target: { v: 2 }, priority: 9, attempt: 0, last_error: null })
    expect(r[0].payload.toString()).toBe('v2')
  })

  it('refuses to replace a running job and writes nothing', async () => {
    const job = await acme.push({ queue: 'emails', type: 'send', key: 'busy', payload: 'orig' })
    await markRunning(t, job.id)
    const before = await rows(t, 'select * from S.jobs where id = $1', [job.id])
    const err = await acme.push({ queue: 'emails', type: 'other', key: 'busy', payload: 'new' }).catch((e) => e)
    expect(err).toBeInstanceOf(PgQueueJobRunningError)
    expect(err).toMatchObject({ queue: 'emails', key: 'busy', jobId: job.id })
    expect(await rows(t, 'select * from S.jobs where id = $1', [job.id])).toEqual(before)
    expect(await rows(t, `select count(*)::int as n from S.jobs where key = 'busy'`)).toEqual([{ n: 1 }])
  })

  it('pushMany reports running and superseded items per item', async () => {
    const busy = await acme.push({ queue: 'm', type: 't', key: 'r' })
    await markRunning(t, busy.id)
    const res = await acme.pushMany([
      { queue: 'm', type: 't', key: 'dup', payload: 'first' },
      { queue: 'm', type: 't', key: 'r' },
      { queue: 'm', type: 't' },
      { queue: 'm', type: 't', key: 'dup', payload: 'last' },
    ])
    expect(res.map((r) => r.outcome)).toEqual(['superseded', 'running', 'created', 'created'])
    expect(res[1]!.id).toBe(busy.id)
    expect(res[0]!.id).toBe(res[3]!.id)
    const [dup] = await rows(t, `select payload from S.jobs where queue = 'm' and key = 'dup'`)
    expect(dup.payload.toString()).toBe('last')
  })
})

describe('transactional enqueue', () => {
  it('commits and rolls back with a pg client inside BEGIN', async () => {
    const client = await userPool.connect()
    try {
      await client.query('begin')
      const a = await acme.push({ queue: 'tx', type: 't' }, { tx: client })
      await client.query('rollback')
      expect(await rows(t, 'select id from S.jobs where id = $1', [a.id])).toEqual([])
      await client.query('begin')
      const b = await acme.push({ queue: 'tx', type: 't' }, { tx: client })
      const many = await acme.pushMany([{ queue: 'tx', type: 't' }, { queue: 'tx', type: 'u' }], { tx: client })
      expect(await rows(t, 'select id from S.jobs where id = $1', [b.id])).toEqual([]) // not visible before commit
      await client.query('commit')
      expect(await rows(t, 'select count(*)::int as n from S.jobs where id = any($1)', [[b.id, ...many.map((m) => m.id)]])).toEqual([{ n: 3 }])
    } finally {
      client.release()
    }
  })

  it('commits and rolls back with a Kysely transaction', async () => {
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: t.userUrl, max: 1 }) }) })
    try {
      let id = ''
      await expect(
        db.transaction().execute(async (tx) => {
          id = (await acme.push({ queue: 'tx', type: 'k' }, { tx })).id
          throw new Error('caller fails')
        }),
      ).rejects.toThrow('caller fails')
      expect(await rows(t, 'select id from S.jobs where id = $1', [id])).toEqual([])
      await db.transaction().execute(async (tx) => {
        id = (await acme.push({ queue: 'tx', type: 'k' }, { tx })).id
        // The caller's own statements see the tenant push_jobs() set for this transaction.
        const mine = await tx.withSchema(t.schema).selectFrom('jobs').select('id').where('id', '=', id).execute()
        expect(mine).toHaveLength(1)
      })
      expect(await rows(t, 'select id from S.jobs where id = $1', [id])).toHaveLength(1)
    } finally {
      await db.destroy()
    }
  })

  it('refuses a pool or a plain Kysely as tx', async () => {
    await expect(acme.push({ queue: 'tx', type: 't' }, { tx: userPool as never })).rejects.toMatchObject({ field: 'tx' })
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: userPool }) })
    await expect(acme.push({ queue: 'tx', type: 't' }, { tx: db })).rejects.toMatchObject({ field: 'tx' })
  })
})

describe('pushMany', () => {
  it('pushes 10,000 jobs in a few statements, all or nothing', async () => {
    const items = Array.from({ length: 10_000 }, (_, i) => ({ queue: i % 2 ? 'bulk-a' : 'bulk-b', type: 'n', payload: `p${i}`, target: { i } }))
    const res = await acme.pushMany(items)
    expect(res).toHaveLength(10_000)
    expect(new Set(res.map((r) => r.id)).size).toBe(10_000)
    expect(res.every((r) => r.outcome === 'created' && r.state === 'pending')).toBe(true)
    expect(await rows(t, `select count(*)::int as n, count(distinct (queue, vt))::int as vts from S.jobs where tenant_id = 'acme' and queue like 'bulk-%'`)).toEqual([{ n: 10_000, vts: 10_000 }])
    // Fair order inside a queue follows the input order.
    const ordered = await rows(t, `select target->>'i' as i from S.jobs where queue = 'bulk-a' order by vt limit 3`)
    expect(ordered.map((r) => Number(r.i))).toEqual([1, 3, 5])
  })

  it('writes nothing when a later chunk fails', async () => {
    // A test-only trigger makes the third row (so the second chunk of 2) fail inside the database.
    await t.admin.query(`create function "${t.schema}".boom() returns trigger language plpgsql as $$
      begin if new.type = 'boom' then raise exception 'boom'; end if; return new; end $$`)
    await t.admin.query(`create trigger boom before insert on "${t.schema}".jobs for each row execute function "${t.schema}".boom()`)
    const q = Queues.create(userPool, { schema: t.schema, pushChunkSize: 2 })
    try {
      const items = [{ queue: 'atomic', type: 't' }, { queue: 'atomic', type: 't' }, { queue: 'atomic', type: 'boom' }]
      await expect(q.withTenant('acme').pushMany(items)).rejects.toThrow('boom')
    } finally {
      await q.close()
      await t.admin.query(`drop trigger boom on "${t.schema}".jobs`)
    }
    expect(await rows(t, `select count(*)::int as n from S.jobs where queue = 'atomic'`)).toEqual([{ n: 0 }])
  })

  it('validates every item before writing anything', async () => {
    const err = await acme.pushMany([{ queue: 'v', type: 't' }, { queue: 'v', type: '' }]).catch((e) => e)
    expect(err).toBeInstanceOf(PgQueueValidationError)
    expect(err.field).toBe('items[1].type')
    expect(await rows(t, `select count(*)::int as n from S.jobs where queue = 'v'`)).toEqual([{ n: 0 }])
  })
})

describe('get, list, history', () => {
  it('gets by id and by key, and finds finished jobs in history', async () => {
    const job = await acme.push({ queue: 'g', type: 't', key: 'gk' })
    expect(await acme.get({ queue: 'g', key: 'gk' })).toMatchObject({ id: job.id, key: 'gk' })
    expect(await acme.get({ queue: 'g', key: 'nope' })).toBeNull()
    const hid = await insertHistory(t, { tenant: 'acme', queue: 'g', state: 'completed' })
    expect(await acme.get(hid)).toMatchObject({ id: hid, state: 'completed', finishedAt: expect.any(Date) })
    expect(await acme.get('0190a6e2-0000-7000-8000-000000000000')).toBeNull()
  })

  it('lists live jobs newest first with filters and keyset paging', async () => {
    const ids: string[] = []
    for (let i = 0; i < 5; i++) ids.push((await acme.push({ queue: 'page', type: i % 2 ? 'odd' : 'even' })).id)
    await acme.push({ queue: 'page', type: 'even', delay: 60_000 })
    const seen: string[] = []
    let cursor: string | null = null
    do {
      const page = await acme.list({ queue: 'page', state: 'pending', limit: 2, cursor })
      seen.push(...page.items.map((j) => j.id))
      cursor = page.nextCursor
    } while (cursor)
    expect(seen).toEqual([...ids].reverse())
    const odd = await acme.list({ queue: 'page', type: 'odd' })
    expect(odd.items.map((j) => j.id)).toEqual([ids[3], ids[1]])
    expect((await acme.list({ queue: 'page', state: ['scheduled'] })).items).toHaveLength(1)
    expect((await acme.list({ queue: 'page', since: new Date(Date.now() + 60_000) })).items).toHaveLength(0)
  })

  it('pages history by finish time without skipping entries finished in the same millisecond', async () => {
    const same = new Date('2030-01-01T00:00:00.000Z')
    const ids = []
    for (let i = 0; i < 5; i++) ids.push(await insertHistory(t, { tenant: 'acme', queue: 'hist', state: i % 2 ? 'failed' : 'completed', finishedAt: same }))
    const older = await insertHistory(t, { tenant: 'acme', queue: 'hist', state: 'failed', finishedAt: new Date('2029-01-01') })
    const seen: string[] = []
    let cursor: string | null = null
    do {
      const page = await acme.history({ queue: 'hist', limit: 2, cursor })
      seen.push(...page.items.map((h) => h.id))
      cursor = page.nextCursor
    } while (cursor)
    expect(seen).toEqual([...ids].reverse().concat(older))
    const failed = await acme.history({ queue: 'hist', state: 'failed', until: new Date('2029-06-01') })
    expect(failed.items.map((h) => h.id)).toEqual([older])
  })
})

describe('delete, cancel, retry', () => {
  it('delete removes a waiting job without history and flags a running one', async () => {
    const a = await acme.push({ queue: 'del', type: 't' })
    expect(await acme.delete(a.id)).toBe('deleted')
    expect(await rows(t, 'select id from S.jobs where id = $1 union all select id from S.job_history where id = $1', [a.id])).toEqual([])
    const b = await acme.push({ queue: 'del', type: 't', key: 'bk' })
    await markRunning(t, b.id)
    expect(await acme.delete({ queue: 'del', key: 'bk' })).toBe('cancel_requested')
    expect(await rows(t, 'select state, cancel_requested from S.jobs where id = $1', [b.id])).toEqual([{ state: 'running', cancel_requested: true }])
    expect(await acme.delete(a.id)).toBe('not_found')
  })

  it('cancel moves a waiting job to history and flags a running one', async () => {
    const a = await acme.push({ queue: 'can', type: 't', payload: 'x', target: { n: 1 }, priority: 4, delay: 60_000 })
    expect(await acme.cancel(a.id)).toBe('cancelled')
    expect(await rows(t, 'select id from S.jobs where id = $1', [a.id])).toEqual([])
    const [h] = await rows(t, 'select * from S.job_history where id = $1', [a.id])
    expect(h).toMatchObject({ tenant_id: 'acme', state: 'cancelled', queue: 'can', priority: 4, target: { n: 1 }, attempt: 0 })
    // The error record every writer uses for a cancel (the Worker writes the same name and code).
    expect(h.error).toEqual({ message: 'job cancelled before it ran', name: 'JobAbortedError', code: ERROR_CODES.cancelled, at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/) })
    const b = await acme.push({ queue: 'can', type: 't' })
    await markRunning(t, b.id)
    expect(await acme.cancel(b.id)).toBe('cancel_requested')
    expect(await rows(t, 'select cancel_requested from S.jobs where id = $1', [b.id])).toEqual([{ cancel_requested: true }])
    expect(await acme.cancel(a.id)).toBe('not_found')
  })

  it('job_remove() writes history columns in the order of the one history insert', async () => {
    // job_remove() is SQL (security definer: the user role cannot write history), so it cannot call
    // jobHistoryInsertSql(); this keeps its column list the same as that helper's.
    const [{ def }] = await rows(t, "select pg_get_functiondef('S.job_remove(text, uuid, text, text, boolean)'::regprocedure) as def")
    const list = /insert into \S+\.job_history \(([^)]*)\)/.exec(def)?.[1]
    expect(list?.split(',').map((c: string) => c.trim())).toEqual([...JOB_HISTORY_COLUMNS])
  })

  it('retry pushes a failed or cancelled job again, linked to the original', async () => {
    const hid = await insertHistory(t, { tenant: 'acme', queue: 'ret', state: 'failed' })
    const res = await acme.retry(hid)
    expect(res).toMatchObject({ queue: 'ret', state: 'pending', outcome: 'created' })
    const [row] = await rows(t, 'select * from S.jobs where id = $1', [res.id])
    expect(row).toMatchObject({ retry_of: hid, type: 'send', priority: 7, target: { to: 'x' }, attempt: 0, max_attempts: 3 })
    expect(row.payload.toString()).toBe('hi')
    const done = await insertHistory(t, { tenant: 'acme', queue: 'ret', state: 'completed' })
    await expect(acme.retry(done)).rejects.toMatchObject({ field: 'historyId' })
    await expect(acme.retry('0190a6e2-0000-7000-8000-000000000000')).rejects.toBeInstanceOf(PgQueueNotFoundError)
  })
})

describe('configureQueue', () => {
  it('upserts settings and holds pending jobs when paused or capped', async () => {
    const jobs = await acme.pushMany([{ queue: 'cfg', type: 't' }, { queue: 'cfg', type: 't' }, { queue: 'cfg', type: 't', delay: 60_000 }])
    const cfg = await acme.configureQueue('cfg', { paused: true, displayName: 'Config' })
    expect(cfg).toMatchObject({ queue: 'cfg', paused: true, displayName: 'Config', maxConcurrency: null, retryPolicy: null })
    const states = await rows(t, 'select id, state, vt from S.jobs where id = any($1) order by id', [jobs.map((j) => j.id)])
    expect(states.map((s) => [s.state, s.vt])).toEqual([['held', null], ['held', null], ['scheduled', null]])
    // New pushes into the paused queue are held straight away.
    expect((await acme.push({ queue: 'cfg', type: 't' })).state).toBe('held')
    // Unpausing leaves held jobs to the Scheduler; fields left out keep their values.
    const un = await acme.configureQueue('cfg', { paused: false, maxConcurrency: 3, retryPolicy: { type: 'constant', delayMs: 5, maxAttempts: 9 } })
    expect(un).toMatchObject({ paused: false, displayName: 'Config', maxConcurrency: 3, retryPolicy: { type: 'constant', delayMs: 5, maxAttempts: 9 } })
    expect(await acme.getQueue('cfg')).toMatchObject({ maxConcurrency: 3 })
    expect((await acme.configureQueue('cfg', { maxConcurrency: null, displayName: null })).maxConcurrency).toBeNull()
    expect((await acme.listQueues()).items.map((q) => q.queue)).toContain('cfg')
    expect(await rows(t, `select count(*)::int as n from S.jobs where queue = 'cfg' and state = 'held'`)).toEqual([{ n: 3 }])
  })

  it('rejects bad settings by field and writes nothing', async () => {
    await expect(acme.configureQueue('bad', { maxConcurrency: 0 })).rejects.toMatchObject({ field: 'settings.maxConcurrency' })
    await expect(acme.configureQueue('bad', { retryPolicy: { type: 'nope' } as never })).rejects.toMatchObject({ field: 'settings.retryPolicy.maxAttempts' })
    await expect(acme.configureQueue('bad', { pause: true } as never)).rejects.toMatchObject({ field: 'settings.pause' })
    await expect(acme.configureQueue('', {})).rejects.toMatchObject({ field: 'queue' })
    expect(await rows(t, `select * from S.queues where queue = 'bad'`)).toEqual([])
  })
})

describe('worker metadata', () => {
  it('gets, sets, lists and deletes JSON values', async () => {
    expect(await acme.workerMetadata.get('a')).toBeUndefined()
    await acme.workerMetadata.set('a', { x: 1 })
    await acme.workerMetadata.set('a', { x: 2 })
    await acme.workerMetadata.set('b%', [1, 2])
    expect(await acme.workerMetadata.get('a')).toEqual({ x: 2 })
    expect((await acme.workerMetadata.list()).items.map((e) => e.key)).toEqual(['a', 'b%'])
    expect((await acme.workerMetadata.list({ prefix: 'b%' })).items.map((e) => e.key)).toEqual(['b%'])
    const p1 = await acme.workerMetadata.list({ limit: 1 })
    expect((await acme.workerMetadata.list({ limit: 1, cursor: p1.nextCursor })).items.map((e) => e.key)).toEqual(['b%'])
    expect(await acme.workerMetadata.delete('a')).toBe(true)
    expect(await acme.workerMetadata.delete('a')).toBe(false)
    await expect(acme.workerMetadata.set('c', () => 1)).rejects.toMatchObject({ field: 'value' })
  })
})
