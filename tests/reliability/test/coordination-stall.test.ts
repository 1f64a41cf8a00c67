/**
 * Coordination under a tenant's locks (issue 14, items 5, 9 and 10): nothing a tenant (or any login)
 * holds may stall the Scheduler or the ScheduleRunner for the other tenants. Each scenario measures how
 * long tenant B waited for what the components owe it and records the figure for the fault table.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import pg from 'pg'
import { randomBytes } from 'node:crypto'
import { createIsolatedDatabase, waitFor, type IsolatedDatabase } from '@pgqueue/testing'
import { jobsChannel, migrate } from '@pgqueue/core/internal'
import { createProducer, type Producer } from '@pgqueue/producer'
import { Scheduler } from '@pgqueue/scheduler'
import { ScheduleRunner } from '@pgqueue/schedule-runner'
import { inSchema, reportFigure, sleep } from '../src/harness.js'

const A = 'stall-a'
const B = 'stall-b'
const C = 'stall-c'

let t: IsolatedDatabase
let q: (text: string) => string
let producer: Producer
let user: pg.Pool
let worker: pg.Pool

async function stateOf(tenant: string, id: string): Promise<string | undefined> {
  const { rows } = await t.admin.query(q(`select state from S.jobs where tenant_id = $1 and id = $2`), [tenant, id])
  return rows[0]?.state
}

async function scheduleFires(tenant: string, key: string): Promise<number> {
  const { rows } = await t.admin.query(
    q(`select count(*)::int as n from S.jobs j join S.schedules s on s.tenant_id = j.tenant_id and s.id = j.schedule_id
        where s.tenant_id = $1 and s.key = $2`),
    [tenant, key],
  )
  return rows[0].n
}

/** Claims one pending job of a tenant's queue by SQL, standing in for a worker, with a lease of `leaseMs`. */
async function claimAs(tenant: string, queue: string, leaseMs: number): Promise<string> {
  const { rows } = await worker.query(
    q(`update S.jobs set state = 'running', attempt = attempt + 1, lease_owner = 'sql', lease_expires_at = now() + $3 * interval '1 ms'
        where (tenant_id, id) = (select tenant_id, id from S.jobs where tenant_id = $1 and queue = $2 and state = 'pending' limit 1)
        returning id`),
    [tenant, queue, leaseMs],
  )
  return rows[0].id
}

/** Opens a transaction on a user-role connection and leaves it open; returns the client. */
async function openTx(): Promise<pg.PoolClient> {
  const c = await user.connect()
  await c.query('begin')
  return c
}

beforeAll(async () => {
  t = await createIsolatedDatabase('coordstall')
  q = inSchema(t.schema)
  await migrate(t.adminUrl, t.schemaOptions)
  // The worker role writes fair clocks only through SECURITY DEFINER functions (least privilege): the
  // components must not need a row lock of their own on queue_clocks, nor fair_clock_advance().
  await t.admin.query(q(`revoke insert, update, delete on S.queue_clocks from "${t.workerRole}"`))
  await t.admin.query(q(`revoke execute on function S.fair_clock_advance(text, text, bigint) from "${t.workerRole}"`))
  producer = createProducer(t.userUrl, { schema: t.schema, poolSize: 2 })
  user = new pg.Pool({ connectionString: t.userUrl, max: 4 })
  worker = new pg.Pool({ connectionString: t.workerUrl, max: 2 })
})
afterAll(async () => {
  await producer?.close()
  await user?.end()
  await worker?.end()
  await t?.cleanup()
})

describe('a producer transaction left open', () => {
  it("delays only its own tenant: B's delayed, held and rescued jobs and B's schedule are handled within about a round", async () => {
    const qa = producer.queues.withTenant(A)
    const qb = producer.queues.withTenant(B)
    const qc = producer.queues.withTenant(C)
    // A has pushed into q before (its fair clock row exists); C never has (its clock is created by
    // the open transaction, so another inserter would wait on the uncommitted row).
    await qa.push({ queue: 'q', type: 'work' })
    const due = new Date(Date.now() + 400)
    const aDelayed = await qa.push({ queue: 'q', type: 'work', runAt: due })
    const cDelayed = await qc.push({ queue: 'q', type: 'work', runAt: due })
    const bDelayed = await qb.push({ queue: 'q', type: 'work', runAt: due })
    // B: a job held by its concurrency cap, and a job whose lease has expired.
    await qb.configureQueue('capped', { maxConcurrency: 1 })
    const bHeld = await qb.push({ queue: 'capped', type: 'work' })
    expect(await stateOf(B, bHeld.id)).toBe('held')
    await qb.push({ queue: 'leases', type: 'work' })
    const bLost = await claimAs(B, 'leases', 1)
    // Schedules of A (into q) and B, both due at once.
    await producer.schedules.withTenant(A).create({ key: 'a-tick', queue: 'q', type: 'tick', schedule: { every: 60_000 }, startAt: due })
    await producer.schedules.withTenant(B).create({ key: 'b-tick', queue: 'q', type: 'tick', schedule: { every: 60_000 }, startAt: due })

    // A and C push into q in transactions they leave open: each holds its (tenant, q) fair clock.
    const txA = await openTx()
    const txC = await openTx()
    try {
      await qa.push({ queue: 'q', type: 'work' }, { tx: txA })
      await qc.push({ queue: 'q', type: 'work' }, { tx: txC })
      await sleep(Math.max(0, due.getTime() - Date.now()) + 50)

      const scheduler = Scheduler.create(t.workerUrl, { schema: t.schema, pollMs: 200, listen: false })
      const runner = ScheduleRunner.create(t.workerUrl, { schema: t.schema, pollMs: 200 })
      const errors: Error[] = []
      scheduler.on('error', (e) => errors.push(e))
      runner.on('error', (e) => errors.push(e))
      const started = performance.now()
      const waited: Record<string, number> = {}
      await scheduler.start()
      await runner.start()
      try {
        await waitFor(
          async () => {
            const checks: [string, () => Promise<boolean>][] = [
              ['delayed promoted', async () => (await stateOf(B, bDelayed.id)) === 'pending'],
              ['held released', async () => (await stateOf(B, bHeld.id)) === 'pending'],
              ['lease rescued', async () => (await stateOf(B, bLost)) === 'pending'],
              ['schedule fired', async () => (await scheduleFires(B, 'b-tick')) === 1],
            ]
            for (const [name, check] of checks) if (waited[name] === undefined && (await check())) waited[name] = Math.round(performance.now() - started)
            return Object.keys(waited).length === checks.length
          },
          { timeoutMs: 5_000, intervalMs: 10, message: "B's work done while A and C hold their transactions" },
        ).catch((err) => {
          throw new Error(`${(err as Error).message}; done: ${JSON.stringify(waited)}; errors: ${errors.map((e) => e.message).join(' | ')}`)
        })
        // A's and C's own work waits for their transactions, and the components keep running.
        expect(await stateOf(A, aDelayed.id)).toBe('scheduled')
        expect(await stateOf(C, cDelayed.id)).toBe('scheduled')
        expect(await scheduleFires(A, 'a-tick')).toBe(0)
        reportFigure('coordination.open-producer-tx.B-waited-ms', waited)
        expect(Math.max(...Object.values(waited))).toBeLessThan(2_000)

        // Once they commit, their jobs follow within about a poll.
        await txA.query('commit')
        await txC.query('commit')
        const released = performance.now()
        await waitFor(async () => (await stateOf(A, aDelayed.id)) === 'pending' && (await stateOf(C, cDelayed.id)) === 'pending' && (await scheduleFires(A, 'a-tick')) === 1, {
          timeoutMs: 5_000,
          message: "A's and C's work after their commit",
        })
        reportFigure('coordination.open-producer-tx.A-after-commit-ms', Math.round(performance.now() - released))
        expect(errors).toEqual([])
      } finally {
        await runner.close()
        await scheduler.stop()
      }
      // Fair order of q is intact: within a tenant, every pending job of q has its own virtual time.
      const { rows } = await t.admin.query(q(`select count(*)::int as n, count(distinct (tenant_id, vt))::int as d from S.jobs where queue = 'q' and state = 'pending'`))
      expect(rows[0].n).toBe(rows[0].d)
    } finally {
      await txA.query('rollback').catch(() => {})
      await txC.query('rollback').catch(() => {})
      txA.release()
      txC.release()
    }
  })
})

describe('locks of logins outside pgqueue', () => {
  it("a login with no pgqueue role holding the releaser's old advisory key does not stop B's release", async () => {
    const login = `${t.schema}_x`
    const password = randomBytes(8).toString('hex')
    await t.admin.query(`create role "${login}" login password '${password}'`)
    const url = new URL(t.adminUrl)
    url.username = login
    url.password = password
    const outsider = new pg.Client({ connectionString: url.toString() })
    await outsider.connect()
    try {
      const qb = producer.queues.withTenant(B)
      await qb.configureQueue('adv', { maxConcurrency: 2 })
      const held = await qb.push({ queue: 'adv', type: 'work' })
      expect(await stateOf(B, held.id)).toBe('held')
      // The key the releaser used to take per (tenant, queue); anyone may take any advisory lock.
      const { rows } = await outsider.query(`select pg_try_advisory_lock(hashtextextended($1 || chr(31) || $2 || chr(31) || $3, 7243)) as ok`, [t.schema, B, 'adv'])
      expect(rows[0].ok).toBe(true)
      const scheduler = Scheduler.create(t.workerUrl, { schema: t.schema, listen: false })
      const started = performance.now()
      let rounds = 0
      while ((await stateOf(B, held.id)) === 'held' && rounds < 5) {
        await scheduler.runOnce()
        rounds += 1
      }
      await scheduler.close()
      reportFigure('coordination.outsider-advisory-lock', { rounds, ms: Math.round(performance.now() - started) })
      expect(await stateOf(B, held.id)).toBe('pending')
      expect(rounds).toBe(1)
    } finally {
      await outsider.end()
      await t.admin.query(`drop role if exists "${login}"`)
    }
  })

  it('200 notifications from any login cost the Scheduler a bounded number of rounds', async () => {
    const scheduler = Scheduler.create(t.workerUrl, { schema: t.schema, pollMs: 10_000, notifyGapMs: 100 })
    let rounds = 0
    const round = scheduler.runOnce.bind(scheduler)
    scheduler.runOnce = async () => {
      rounds += 1
      return round()
    }
    await scheduler.start()
    await waitFor(async () => (await t.admin.query(`select 1 from pg_stat_activity where usename = $1 and query ilike 'listen%'`, [new URL(t.workerUrl).username])).rowCount! > 0)
    await sleep(200)
    rounds = 0
    const channel = jobsChannel(t.schema)
    const flood = new pg.Client({ connectionString: t.adminUrl })
    await flood.connect()
    const started = performance.now()
    for (let i = 0; i < 200; i++) await flood.query(`select pg_notify($1, '')`, [channel])
    const elapsed = performance.now() - started
    await sleep(300)
    await flood.end()
    await scheduler.stop()
    reportFigure('coordination.notify-flood', { notifications: 200, rounds, floodMs: Math.round(elapsed) })
    // One round per notifyGapMs while the flood lasts, and one after it.
    expect(rounds).toBeLessThanOrEqual(Math.ceil(elapsed / 100) + 2)
  })
})
