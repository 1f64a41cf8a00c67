import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import pg from 'pg'
import { createIsolatedDatabase, pushJobs, tenantToken, waitFor, type IsolatedDatabase } from '@pgqueue/testing'
import { migrate } from '@pgqueue/core'
import { Scheduler } from '@pgqueue/scheduler'

let t: IsolatedDatabase
let pool: pg.Pool
let user: pg.Pool
const q = (s: string) => s.replaceAll('S.', `"${t.schema}".`)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** A Scheduler whose rounds and statements are counted (it runs on a pool of its own that counts them). */
function counted(options: Parameters<typeof Scheduler.create>[1]): { s: Scheduler; rounds: () => number; statements: () => number; reset: () => void; end: () => Promise<void> } {
  const own = new pg.Pool({ connectionString: t.workerUrl, max: 2 })
  let statements = 0
  const countQuery = <T extends { query: (...a: never[]) => unknown }>(target: T): void => {
    const query = target.query.bind(target) as (...a: unknown[]) => unknown
    ;(target as { query: unknown }).query = (...a: unknown[]) => {
      statements += 1
      return query(...a)
    }
  }
  countQuery(own)
  own.on('connect', (client) => countQuery(client))
  const s = Scheduler.create(own, { schema: t.schema, listen: false, ...options })
  let n = 0
  const round = s.runOnce.bind(s)
  s.runOnce = async () => {
    n += 1
    return round()
  }
  return { s, rounds: () => n, statements: () => statements, reset: () => (n = statements = 0), end: () => own.end() }
}

async function stateOf(id: string): Promise<string | undefined> {
  const { rows } = await t.admin.query(q(`select state from S.jobs where id = $1`), [id])
  return rows[0]?.state
}

/** A transaction on a user-role connection, scoped to `tenant`, left open. */
async function tenantTx(tenant: string): Promise<pg.PoolClient> {
  const c = await user.connect()
  await c.query('begin')
  await c.query(`select set_config('pgqueue.tenant', $1, true), set_config('pgqueue.tenant_token', $2, true)`, [tenant, tenantToken(tenant)])
  return c
}

beforeAll(async () => {
  t = await createIsolatedDatabase('schedclock')
  await migrate(t.adminUrl, t.schemaOptions)
  pool = new pg.Pool({ connectionString: t.workerUrl, max: 2 })
  user = new pg.Pool({ connectionString: t.userUrl, max: 2 })
})
afterEach(() => {
  vi.restoreAllMocks()
})
afterAll(async () => {
  await pool?.end()
  await user?.end()
  await t.cleanup()
})

describe('Scheduler timing', () => {
  it('does not spin on a due job it cannot take (a tenant holds its row, or its fair clock)', async () => {
    const [rowLocked] = await pushJobs(pool, t.schema, 'spin-a', 'spin', 1, { runAt: new Date(Date.now() + 100) })
    const [clockLocked] = await pushJobs(pool, t.schema, 'spin-b', 'spin', 1, { runAt: new Date(Date.now() + 100) })
    await pushJobs(pool, t.schema, 'spin-b', 'spin', 1)
    // Something holds spin-a's due job (a tenant cannot: no UPDATE on jobs; here the owner); spin-b leaves
    // a push into the same queue uncommitted.
    const a = await t.admin.connect()
    await a.query('begin')
    const b = await tenantTx('spin-b')
    try {
      await a.query(q(`select id from S.jobs where id = $1 for update`), [rowLocked])
      await b.query(
        q(`select * from S.push_jobs('spin-b', '${tenantToken('spin-b')}', array[gen_random_uuid()], array['spin'], array['work'], array[null::text], array[null::bytea],
             array[null::text], array[null::jsonb], array[0], array[null::timestamptz], array[5], array[null::jsonb], array[null::uuid], array[null::uuid])`),
      )
      await sleep(150)
      const { s, rounds, statements, reset, end } = counted({ pollMs: 1_000, heldPollMs: 200 })
      await s.start()
      await sleep(100)
      reset()
      await sleep(2_000)
      const n = rounds()
      const sent = statements()
      await s.stop()
      await end()
      expect(await stateOf(rowLocked!)).toBe('scheduled')
      expect(await stateOf(clockLocked!)).toBe('scheduled')
      console.log(`due but locked: ${n} rounds, ${sent} statements in 2 s`)
      // Retried every heldPollMs while the clock is held (the row-locked job alone would be every pollMs);
      // a round per 5 ms before.
      expect(n).toBeLessThanOrEqual(2_000 / 200 + 2)
      expect(sent).toBeLessThanOrEqual(20 * n)
    } finally {
      await a.query('rollback')
      await b.query('rollback')
      a.release()
      b.release()
    }
    // Once the tenants let go, both are promoted.
    const s = Scheduler.create(t.workerUrl, { schema: t.schema })
    await s.runOnce()
    await s.close()
    expect(await stateOf(rowLocked!)).toBe('pending')
    expect(await stateOf(clockLocked!)).toBe('pending')
  })

  it("measures due times by the database's clock: a host clock an hour ahead does not make it spin", async () => {
    const [later] = await pushJobs(pool, t.schema, 'ahead', 'ahead', 1, { runAt: new Date(Date.now() + 30_000) })
    const { s, rounds, reset, end } = counted({ pollMs: 500 })
    await s.start()
    await sleep(100)
    const real = Date.now.bind(Date)
    vi.spyOn(Date, 'now').mockImplementation(() => real() + 3_600_000)
    reset()
    await sleep(1_500)
    const n = rounds()
    vi.restoreAllMocks()
    await s.stop()
    await end()
    console.log(`host clock 1 h ahead: ${n} rounds in 1.5 s`)
    expect(n).toBeLessThanOrEqual(1_500 / 500 + 2)
    expect(await stateOf(later!)).toBe('scheduled')
  })

  it('keeps rescuing expired leases after the wall clock steps back 10 minutes (intervals are monotonic)', async () => {
    const { s, rounds, end } = counted({ pollMs: 100, rescueIntervalMs: 300 })
    await s.start()
    await waitFor(() => rounds() > 0)
    const real = Date.now.bind(Date)
    vi.spyOn(Date, 'now').mockImplementation(() => real() - 600_000)
    const [id] = await pushJobs(pool, t.schema, 'step', 'step', 1)
    await pool.query(q(`update S.jobs set state = 'running', attempt = 1, lease_owner = 'gone', lease_expires_at = now() - interval '1 s' where id = $1`), [id])
    const started = performance.now()
    while ((await stateOf(id!)) === 'running' && performance.now() - started < 5_000) await sleep(20)
    const waited = Math.round(performance.now() - started)
    vi.restoreAllMocks()
    await s.stop()
    await end()
    console.log(`wall clock stepped back 10 min: expired lease rescued after ${waited} ms`)
    expect(await stateOf(id!)).not.toBe('running')
    expect(waited).toBeLessThan(2_000)
  })
})
