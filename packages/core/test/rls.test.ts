import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import pg from 'pg'
import { createIsolatedDatabase, inTenantTx, tenantToken, type IsolatedDatabase } from '@pgqueue/testing'
import { migrate, TenantKey, uuidv7 } from '@pgqueue/core/internal'

let t: IsolatedDatabase
let user: pg.Pool
let worker: pg.Pool

async function push(pool: pg.Pool, tenant: string, queue: string, key: string | null = null, token = tenant === '' ? '' : tenantToken(tenant)) {
  const id = uuidv7()
  const { rows } = await pool.query(
    `select * from "${t.schema}".push_jobs($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
    [tenant, token, [id], [queue], ['send'], [key], [Buffer.from('x')], ['text/plain'], [JSON.stringify({ a: 1 })], [0], [null], [3], [null], [null], [null]],
  )
  return rows[0]
}

/** Runs `fn` in a transaction of `pool` with pgqueue.tenant (and the token, when given) set by hand. */
async function inForgedTx<T>(pool: pg.Pool, tenant: string, token: string | null, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const c = await pool.connect()
  try {
    await c.query('begin')
    await c.query(`select set_config('pgqueue.tenant', $1, true)`, [tenant])
    if (token !== null) await c.query(`select set_config('pgqueue.tenant_token', $1, true)`, [token])
    return await fn(c)
  } finally {
    await c.query('rollback').catch(() => {})
    c.release()
  }
}

beforeAll(async () => {
  t = await createIsolatedDatabase('rls')
  await migrate(t.adminUrl, t.schemaOptions)
  user = new pg.Pool({ connectionString: t.userUrl, max: 3 })
  worker = new pg.Pool({ connectionString: t.workerUrl, max: 3 })
  user.on('error', () => {})
  worker.on('error', () => {})
  await push(user, 'tenant-a', 'emails', 'a-key')
  await push(user, 'tenant-b', 'emails', 'b-key')
  await t.admin.query(
    `insert into "${t.schema}".job_history (tenant_id, id, queue, type, state, attempt, max_attempts, created_at, run_at)
     values ('tenant-a', $1, 'emails', 'send', 'completed', 1, 3, now(), now()), ('tenant-b', $2, 'emails', 'send', 'completed', 1, 3, now(), now())`,
    [uuidv7(), uuidv7()],
  )
})
afterAll(async () => {
  await user?.end()
  await worker?.end()
  await t.cleanup()
})

const q = (sqlText: string) => sqlText.replaceAll('S.', `"${t.schema}".`)

describe('row-level security for the user role', () => {
  it('shows only the tenant set in the transaction', async () => {
    const rows = await inTenantTx(user, 'tenant-a', async (c) => (await c.query(q('select tenant_id, key from S.jobs'))).rows)
    expect(rows).toEqual([{ tenant_id: 'tenant-a', key: 'a-key' }])
    const hist = await inTenantTx(user, 'tenant-a', async (c) => (await c.query(q('select tenant_id from S.job_history'))).rows)
    expect(hist).toEqual([{ tenant_id: 'tenant-a' }])
  })

  it('shows nothing and writes nothing without a tenant', async () => {
    const rows = await inTenantTx(user, null, async (c) => (await c.query(q('select id from S.jobs'))).rows)
    expect(rows).toEqual([])
    await expect(
      inTenantTx(user, null, (c) => c.query(q(`insert into S.queues (tenant_id, queue) values ('tenant-a', 'x')`))),
    ).rejects.toMatchObject({ code: '42501' })
    await expect(push(user, '', 'emails')).rejects.toMatchObject({ code: '42501' })
  })

  it('cannot insert, update or delete rows of another tenant', async () => {
    await expect(
      inTenantTx(user, 'tenant-a', (c) => c.query(q(`insert into S.queues (tenant_id, queue) values ('tenant-b', 'x')`))),
    ).rejects.toMatchObject({ code: '42501' })
    await expect(
      inTenantTx(user, 'tenant-a', (c) =>
        c.query(q(`insert into S.job_history (tenant_id, id, queue, type, state, attempt, max_attempts, created_at, run_at) values ('tenant-b', gen_random_uuid(), 'q', 't', 'completed', 1, 1, now(), now())`)),
      ),
    ).rejects.toMatchObject({ code: '42501' })
    // Jobs are written only through push_jobs() and job_remove(): no UPDATE or DELETE at all.
    await expect(inTenantTx(user, 'tenant-a', (c) => c.query(q(`update S.jobs set cancel_requested = true where tenant_id = 'tenant-b'`))))
      .rejects.toMatchObject({ code: '42501' })
    await expect(inTenantTx(user, 'tenant-a', (c) => c.query(q(`delete from S.jobs where tenant_id = 'tenant-b'`)))).rejects.toMatchObject({ code: '42501' })
    const removed = await inTenantTx(user, 'tenant-a', async (c) =>
      (await c.query(q(`select * from S.job_remove('tenant-b', null, 'emails', 'b-key', true)`))).rows).catch((err) => err.code)
    expect(removed).toBe('42501')
    // Moving an own row to another tenant is refused by WITH CHECK (and by the column grant).
    await expect(
      inTenantTx(user, 'tenant-a', async (c) => {
        await c.query(q(`insert into S.queues (tenant_id, queue) values ('tenant-a', 'mine')`))
        return c.query(q(`update S.queues set tenant_id = 'tenant-b'`))
      }),
    ).rejects.toMatchObject({ code: '42501' })
    const { rows } = await t.admin.query(q(`select count(*)::int as n from S.jobs where tenant_id = 'tenant-b' and not cancel_requested`))
    expect(rows[0].n).toBe(1)
  })

  it('cannot push into another tenant from a transaction scoped to one', async () => {
    await expect(
      inTenantTx(user, 'tenant-a', (c) =>
        c.query(q(`select * from S.push_jobs('tenant-b', array[gen_random_uuid()], array['q'], array['t'], array[null]::text[], array[null]::bytea[], array[null]::text[], array[null]::jsonb[], array[0], array[null]::timestamptz[], array[1], array[null]::jsonb[], array[null]::uuid[], array[null]::uuid[])`)),
      ),
    ).rejects.toMatchObject({ code: '42501' })
  })

  it('never sees the fair virtual time, nor partitions, clocks or migrations directly', async () => {
    await expect(inTenantTx(user, 'tenant-a', (c) => c.query(q('select vt from S.jobs')))).rejects.toMatchObject({ code: '42501' })
    await expect(inTenantTx(user, 'tenant-a', (c) => c.query(q('select * from S.job_history_default')))).rejects.toMatchObject({ code: '42501' })
    await expect(inTenantTx(user, 'tenant-a', (c) => c.query(q('select * from S.queue_clocks')))).rejects.toMatchObject({ code: '42501' })
    await expect(inTenantTx(user, 'tenant-a', (c) => c.query(q('select * from S.migrations')))).rejects.toMatchObject({ code: '42501' })
    await expect(inTenantTx(user, 'tenant-a', (c) => c.query(q(`select S.fair_clock_advance('tenant-a', 'emails', 1)`)))).rejects.toMatchObject({ code: '42501' })
  })

  it('cannot create, alter or drop anything, nor disable row-level security', async () => {
    for (const stmt of [
      'create table S.evil (id int)',
      'alter table S.jobs add column evil int',
      'alter table S.jobs disable row level security',
      'drop table S.jobs',
      'drop policy jobs_tenant on S.jobs',
      'create function S.evil() returns int language sql as $$ select 1 $$',
      'truncate S.jobs',
    ]) {
      await expect(inTenantTx(user, 'tenant-a', (c) => c.query(q(stmt))), stmt).rejects.toMatchObject({ code: '42501' })
    }
  })
})

describe('flows under row-level security', () => {
  // Leave the rows the later tests count as they were.
  afterAll(async () => {
    await t.admin.query(q(`delete from S.jobs where queue = 'fq'`))
    await t.admin.query(q(`delete from S.flow_edges; delete from S.flow_nodes`))
  })

  /** Calls the user role's push_flow() for `tenant` with two nodes, the second waiting on `parent` (default: the first). */
  async function pushFlow(c: pg.Pool | pg.PoolClient, tenant: string, parent?: string) {
    const flowId = uuidv7()
    const ids = [uuidv7(), uuidv7()]
    const { rows } = await c.query(
      q(`select * from S.push_flow($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`),
      [tenant, tenantToken(tenant), flowId, ids, ['r1', 'r2'], ['fq', 'fq'], ['t', 't'], [null, null], [null, null], [null, null], [0, 0],
       [null, null], [null, null], [null, null], [false, false], [ids[1]], [parent ?? ids[0]]],
    )
    return { flowId, ids, rows }
  }

  it("cannot read, cancel, release or attach to another tenant's flow", async () => {
    const b = await pushFlow(user, 'tenant-b')
    expect(b.rows.map((r) => r.state).sort()).toEqual(['pending', 'waiting'])
    const snapshot = async () => (await t.admin.query(q('select * from S.flow_nodes where flow_id = $1 order by id'), [b.flowId])).rows
    const before = await snapshot()
    // Reads see nothing of B.
    const seen = await inTenantTx(user, 'tenant-a', async (c) => ({
      nodes: (await c.query(q('select * from S.flow_nodes where flow_id = $1'), [b.flowId])).rows,
      edges: (await c.query(q('select * from S.flow_edges where child_id = $1'), [b.ids[1]])).rows,
    }))
    expect(seen).toEqual({ nodes: [], edges: [] })
    // Cancelling B's flow as A: refused for B's tenant id, a no-op under A's.
    await expect(inTenantTx(user, 'tenant-a', (c) => c.query(q('select * from S.flow_cancel($1, $2)'), ['tenant-b', b.flowId]))).rejects.toMatchObject({ code: '42501' })
    const none = await inTenantTx(user, 'tenant-a', async (c) => (await c.query(q('select * from S.flow_cancel($1, $2)'), ['tenant-a', b.flowId])).rows)
    expect(none).toEqual([{ cancelled: 0, flagged: 0 }])
    // Releasing: the settling, release, adoption and unchecked push functions are not the user role's.
    for (const call of [
      `select S.flow_parents_done(array['tenant-b'], array['${b.ids[0]}'::uuid], array['completed'], null, null, null)`,
      `select S.flow_release('tenant-b', array['${b.ids[1]}'::uuid])`,
      `select S.flow_adopt('tenant-b', '${b.ids[0]}', gen_random_uuid())`,
      `select * from S.push_flow_unchecked('tenant-b', '${b.flowId}', array[gen_random_uuid()], array['x'], array['fq'], array['t'], null, null, null, array[0], null, null, null, null, array[]::uuid[], array[]::uuid[], true)`,
    ]) {
      await expect(inTenantTx(user, 'tenant-a', (c) => c.query(q(call)))).rejects.toMatchObject({ code: '42501' })
    }
    // Writing the flow tables directly is refused.
    await expect(inTenantTx(user, 'tenant-b', (c) => c.query(q(`update S.flow_nodes set parents_left = 0 where flow_id = $1`), [b.flowId]))).rejects.toMatchObject({ code: '42501' })
    await expect(inTenantTx(user, 'tenant-a', (c) => c.query(q(`insert into S.flow_edges values ('tenant-a', $1, $2)`), [b.ids[0], uuidv7()]))).rejects.toMatchObject({ code: '42501' })
    // Attaching: the user role's push_flow() takes parents of its own call only.
    await expect(pushFlow(user, 'tenant-a', b.ids[0])).rejects.toMatchObject({ code: '22023' })
    expect(await snapshot()).toEqual(before)
  })

  it("the worker role's push_flow() attaches only to nodes of the same tenant and flow", async () => {
    const b = await pushFlow(user, 'tenant-b')
    const child = uuidv7()
    const call = (tenant: string, flowId: string, parent: string) =>
      worker.query(q(`select * from S.push_flow($1, $2, $3, $4, $5, $6, null, null, null, $7, null, null, null, null, $8, $9)`),
        [tenant, flowId, [child], ['late'], ['fq'], ['t'], [0], [child], [parent]])
    await expect(call('tenant-a', b.flowId, b.ids[0]!)).rejects.toMatchObject({ code: '22023' })
    await expect(call('tenant-b', uuidv7(), b.ids[0]!)).rejects.toMatchObject({ code: '22023' })
    const ok = await call('tenant-b', b.flowId, b.ids[0]!)
    expect(ok.rows).toEqual([{ id: child, ref: 'late', state: 'waiting' }])
  })
})

describe('the tenant credential', () => {
  it('signs tokens in the test helper exactly as core does', () => {
    const key = TenantKey.resolve(t.tenantSecret)
    for (const tenant of ['tenant-a', 'δέλτα', "it's", '租户']) expect(key.token(tenant)).toBe(tenantToken(tenant))
  })

  it('refuses a tenant set without the token, or with a token of another tenant or secret', async () => {
    const forged = [
      { what: 'no token', token: null },
      { what: 'empty token', token: '' },
      { what: "tenant-a's token", token: tenantToken('tenant-a') },
      { what: 'a token of another secret', token: tenantToken('tenant-b', 'x'.repeat(40)) },
      { what: 'the token in upper case', token: tenantToken('tenant-b').toUpperCase() },
    ]
    for (const { what, token } of forged) {
      for (const stmt of ['select payload, target from S.jobs', 'select * from S.job_history', 'select * from S.worker_metadata', 'select * from S.schedules']) {
        await expect(inForgedTx(user, 'tenant-b', token, (c) => c.query(q(stmt))), `${what}: ${stmt}`).rejects.toMatchObject({ code: '42501' })
      }
      await expect(push(user, 'tenant-b', 'emails', 'b-key', token ?? ''), `${what}: push`).rejects.toMatchObject({ code: '42501' })
    }
    const { rows } = await t.admin.query(q(`select count(*)::int as n from S.jobs where tenant_id = 'tenant-b'`))
    expect(rows[0].n).toBe(1)
  })

  it('keeps the secret from both roles and from pg_proc', async () => {
    for (const pool of [user, worker]) {
      await expect(pool.query(q('select * from S.tenant_secret'))).rejects.toMatchObject({ code: '42501' })
      await expect(pool.query(q(`select S.set_tenant_secret('${'y'.repeat(40)}')`))).rejects.toMatchObject({ code: '42501' })
      const { rows } = await pool.query(`select count(*)::int as n from pg_proc where prosrc like '%' || $1 || '%'`, [t.tenantSecret])
      expect(rows[0].n).toBe(0)
    }
  })

  it('gives the user role no table-level UPDATE, DELETE or TRUNCATE, so it cannot lock tables or job rows', async () => {
    for (const table of ['jobs', 'job_history', 'queues', 'schedules', 'worker_metadata', 'queue_clocks', 'nodes']) {
      for (const mode of ['access exclusive', 'exclusive', 'share row exclusive', 'share']) {
        await expect(inTenantTx(user, 'tenant-a', (c) => c.query(q(`lock table S.${table} in ${mode} mode`))), `${table} ${mode}`)
          .rejects.toMatchObject({ code: '42501' })
      }
    }
    for (const stmt of ['select id from S.jobs for update', 'select id from S.jobs for share', 'select id from S.jobs for key share',
      'select id from S.job_history for update', `update S.jobs set cancel_requested = true`, `delete from S.jobs`,
      `delete from S.queues`, `delete from S.schedules`, `delete from S.worker_metadata`]) {
      await expect(inTenantTx(user, 'tenant-a', (c) => c.query(q(stmt))), stmt).rejects.toMatchObject({ code: '42501' })
    }
  })

  it('installs an operator secret on initialize and then refuses tokens of the old one', async () => {
    const other = await createIsolatedDatabase('rls2')
    try {
      const first = await migrate(other.adminUrl, { ...other.schemaOptions, tenantSecret: 'a'.repeat(32) })
      expect(first.tenantSecret).toBe('a'.repeat(32))
      const again = await migrate(other.adminUrl, { ...other.schemaOptions, tenantSecret: 'b'.repeat(32) })
      expect(again.applied).toEqual([])
      expect(again.tenantSecret).toBe('b'.repeat(32))
      const pool = new pg.Pool({ connectionString: other.userUrl, max: 1 })
      try {
        const read = (secret: string) => inForgedTx(pool, 'acme', tenantToken('acme', secret), (c) => c.query(`select "${other.schema}".current_tenant() as tenant`))
        await expect(read('a'.repeat(32))).rejects.toMatchObject({ code: '42501' })
        expect((await read('b'.repeat(32))).rows).toEqual([{ tenant: 'acme' }])
      } finally {
        await pool.end()
      }
      await expect(migrate(other.adminUrl, { ...other.schemaOptions, tenantSecret: 'short' })).rejects.toMatchObject({ field: 'tenantSecret' })
    } finally {
      await other.cleanup()
    }
  })
})

describe('the worker role', () => {
  it('sees every tenant', async () => {
    const { rows } = await worker.query(q('select tenant_id from S.jobs order by tenant_id'))
    expect(rows.map((r) => r.tenant_id)).toEqual(['tenant-a', 'tenant-b'])
  })

  it('cannot run DDL or reach the migrations table or partitions', async () => {
    for (const stmt of [
      'create table S.evil (id int)',
      'alter table S.jobs disable row level security',
      'drop table S.jobs',
      'select * from S.migrations',
      'select * from S.job_history_default',
      'truncate S.jobs',
    ]) {
      await expect(worker.query(q(stmt)), stmt).rejects.toMatchObject({ code: '42501' })
    }
  })
})

describe('push_jobs', () => {
  it('replaces a waiting job by key and refuses to replace a running one', async () => {
    const first = await push(user, 'tenant-c', 'emails', 'k1')
    expect(first.outcome).toBe('created')
    const again = await push(user, 'tenant-c', 'emails', 'k1')
    expect(again.outcome).toBe('replaced')
    expect(again.id).toBe(first.id)
    await t.admin.query(q(`update S.jobs set state = 'running', lease_owner = 'w1', lease_expires_at = now() + interval '1 minute' where id = $1`), [first.id])
    const running = await push(user, 'tenant-c', 'emails', 'k1')
    expect(running.outcome).toBe('running')
    expect(running.id).toBe(first.id)
  })

  it('stamps fair virtual times: a new tenant joins the head of the queue, not the tail', async () => {
    const ids = Array.from({ length: 100 }, () => uuidv7())
    const n = ids.length
    await worker.query(
      q(`select * from S.push_jobs('noisy', $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`),
      [ids, Array(n).fill('fair'), Array(n).fill('t'), Array(n).fill(null), Array(n).fill(null), Array(n).fill(null), Array(n).fill(null), Array(n).fill(0), Array(n).fill(null), Array(n).fill(1), Array(n).fill(null), Array(n).fill(null), Array(n).fill(null)],
    )
    await push(user, 'quiet', 'fair')
    await push(user, 'quiet', 'fair')
    const { rows } = await t.admin.query(q(`select tenant_id from S.jobs where queue = 'fair' and state = 'pending' order by priority desc, vt limit 6`))
    const order = rows.map((r) => r.tenant_id)
    // The newcomer ties with the head of the queue: one job of each tenant per round.
    expect(order.slice(0, 2).sort()).toEqual(['noisy', 'quiet'])
    expect(order.slice(2, 4).sort()).toEqual(['noisy', 'quiet'])
    expect(order.slice(4)).toEqual(['noisy', 'noisy'])
  })
})
