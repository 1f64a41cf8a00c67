import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connect, createHistoryPartition, migrate, silentLogger } from '@pgqueue/core/internal'
import { Maintenance } from '@pgqueue/maintenance'
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { createIsolatedDatabase, testDatabaseUrl, type IsolatedDatabase } from '@pgqueue/testing'
import { createDashboard, type Dashboard } from '../src/index.js'

// Server time of every page on a larger fixture: behind PGQUEUE_LONG_TESTS=1, sizes from the environment.
// The machine is shared, so the default is small (100,000 live and 100,000 finished jobs).
// PGQUEUE_SCALE_KEEP=1 keeps the fixture; PGQUEUE_SCALE_SCHEMA=<its schema> measures it again.
const LONG = process.env.PGQUEUE_LONG_TESTS === '1'
const LIVE = Number(process.env.PGQUEUE_SCALE_LIVE ?? 100_000)
const HISTORY = Number(process.env.PGQUEUE_SCALE_HISTORY ?? 100_000)
const TENANTS = 100
const REUSE = process.env.PGQUEUE_SCALE_SCHEMA
const DAYS = 7
// The tenant of the tenant-mode requests. t7 has no failures in this fixture (failed history rows are
// t0's and t50's, live jobs with a last error t17's, t37's...): PGQUEUE_SCALE_TENANT=t0 measures one that has.
const TENANT = process.env.PGQUEUE_SCALE_TENANT ?? 't7'

let t: IsolatedDatabase
let operator: Dashboard
let tenant: Dashboard

function log(line: string): void {
  process.stderr.write(`[dashboard scale] ${line}\n`)
}

/** Runs `statement(from, to)` over 1..total in slices of a million rows (one big statement each: quick, bounded memory). */
async function chunked(total: number, statement: (from: number, to: number) => string): Promise<void> {
  for (let from = 1; from <= total; from += 1_000_000) {
    const to = Math.min(total, from + 999_999)
    const t0 = performance.now()
    await t.admin.query(statement(from, to))
    log(`rows ${from}..${to}: ${((performance.now() - t0) / 1000).toFixed(1)} s`)
  }
}

const NO_TASKS = { partitions: false, retention: false, nodes: false, leases: false, vacuum: false, rollup: false, liveCounts: false }

/**
 * What a running Maintenance keeps up to date, as the dashboard expects to find it: the Stats rollups
 * (a first run takes a bounded number of chunks, so it runs until they reach the last minutes) and the
 * live_counts snapshot (read when under a minute old, so it is taken again before each page).
 */
async function catchUp(): Promise<void> {
  const t0 = performance.now()
  for (let i = 0; i < 100; i++) {
    await Maintenance.runOnce(t.adminUrl, { ...t.schemaOptions, logger: silentLogger, tasks: { ...NO_TASKS, rollup: true } })
    const { rows } = await t.admin.query(`select rolled_up_to > now() - interval '10 minutes' as done from "${t.schema}".stats_rollup_state`)
    if (rows[0].done) break
  }
  log(`rollups caught up: ${((performance.now() - t0) / 1000).toFixed(1)} s`)
}

async function liveCounts(): Promise<void> {
  await Maintenance.runOnce(t.adminUrl, { ...t.schemaOptions, logger: silentLogger, tasks: { ...NO_TASKS, liveCounts: true } })
}

/** Median server time of a page over `runs` requests (after one warm-up), in ms; the page must answer 200. */
async function pageTime(d: Dashboard, path: string, runs = 5): Promise<number> {
  const times: number[] = []
  for (let i = 0; i <= runs; i++) {
    const t0 = performance.now()
    const res = await d.fetch(new Request(`http://scale.test${path}`, { headers: { 'x-tenant': TENANT } }))
    const body = await res.text()
    expect(res.status, `${path}: ${body.slice(0, 300)}`).toBe(200)
    if (i > 0) times.push(performance.now() - t0)
  }
  times.sort((a, b) => a - b)
  return times[Math.floor(times.length / 2)]!
}

/**
 * The fixture a run with PGQUEUE_SCALE_KEEP=1 left behind, for measuring again after a change without
 * seeding again: its logins get a new password, and the schema's tenant secret signs the tenants.
 */
async function reuse(schema: string): Promise<IsolatedDatabase> {
  const adminUrl = testDatabaseUrl()
  const admin = new pg.Pool({ connectionString: adminUrl, max: 2 })
  const password = randomBytes(8).toString('hex')
  for (const login of ['wl', 'ul']) await admin.query(`alter role "${schema}_${login}" password '${password}'`)
  const { rows } = await admin.query(`select secret from "${schema}".tenant_secret`)
  const tenantSecret = rows[0].secret as string
  const url = (login: string) => Object.assign(new URL(adminUrl), { username: `${schema}_${login}`, password }).toString()
  const schemaOptions = { schema, workerRole: `${schema}_worker`, userRole: `${schema}_user`, tenantSecret }
  return { ...schemaOptions, adminUrl, workerUrl: url('wl'), userUrl: url('ul'), schemaOptions, admin, cleanup: async () => void (await admin.end()) }
}

describe.skipIf(!LONG)(`dashboard pages at ${LIVE} live and ${HISTORY} finished jobs`, () => {
  beforeAll(async () => {
    if (REUSE) {
      t = await reuse(REUSE)
      await catchUp()
      const common = { schema: t.schema, tenantSecret: t.tenantSecret }
      operator = createDashboard({ ...common, mode: 'operator', connection: t.workerUrl, actionConnection: t.userUrl })
      tenant = createDashboard({ ...common, mode: 'tenant', connection: t.userUrl, resolveTenant: (r) => r.headers.get('x-tenant') })
      return
    }
    t = await createIsolatedDatabase('dash_scale')
    await migrate(t.adminUrl, t.schemaOptions)
    const s = `"${t.schema}"`
    const conn = connect(t.adminUrl, { max: 1 })
    for (let d = -DAYS; d <= 1; d++) await createHistoryPartition(conn.db, new Date(Date.now() + d * 86_400_000), t.schemaOptions)
    await conn.close()
    const t0 = performance.now()
    // Live: 100 tenants, 10 queues; 70 % pending, 15 % scheduled, 10 % held (some with a last error), 5 % running.
    await chunked(LIVE, (from, to) => `
      insert into ${s}.jobs (tenant_id, queue, type, state, vt, run_at, attempt, lease_owner, lease_expires_at, target, last_error)
      select 't' || (i % ${TENANTS}), 'q' || (i % 10), 'x',
             case when i % 20 < 14 then 'pending' when i % 20 < 17 then 'scheduled' when i % 20 < 19 then 'held' else 'running' end,
             case when i % 20 < 14 then i end,
             now() + case when i % 20 in (14, 15) then interval '1 hour' else - (i % 3600) * interval '1 second' end,
             i % 3, case when i % 20 = 19 then 'w' end, case when i % 20 = 19 then now() + interval '1 minute' end,
             jsonb_build_object('customer', jsonb_build_object('id', i % 5000), 'region', 'r' || (i % 7)),
             case when i % 20 = 17 then jsonb_build_object('message', 'timeout ' || (i % 5), 'at', now()) end
        from generate_series(${from}, ${to}) i`)
    await chunked(HISTORY, (from, to) => `
      insert into ${s}.job_history (tenant_id, id, queue, type, state, attempt, max_attempts, created_at, run_at, started_at, finished_at, target, error)
      select 't' || (i % ${TENANTS}), gen_random_uuid(), 'q' || (i % 10), 'x',
             case when i % 50 = 0 then 'failed' when i % 97 = 0 then 'cancelled' else 'completed' end, 1, 3,
             f - interval '2 seconds', f - interval '1 second' - (i % 1000) * interval '1 millisecond', f - (i % 700) * interval '1 millisecond', f,
             jsonb_build_object('customer', jsonb_build_object('id', i % 5000)),
             case when i % 50 = 0 then jsonb_build_object('message', 'upstream ' || (i % 9), 'stack', 'Error: upstream') end
        from generate_series(${from}, ${to}) i,
             lateral (select now() - (i::float8 / ${HISTORY}) * interval '${DAYS} days' as f) x`)
    await t.admin.query(`vacuum analyze ${s}.jobs`)
    await t.admin.query(`vacuum analyze ${s}.job_history`)
    log(`fixture: ${((performance.now() - t0) / 1000).toFixed(1)} s`)
    await catchUp()
    const common = { schema: t.schema, tenantSecret: t.tenantSecret }
    operator = createDashboard({ ...common, mode: 'operator', connection: t.workerUrl, actionConnection: t.userUrl })
    tenant = createDashboard({ ...common, mode: 'tenant', connection: t.userUrl, resolveTenant: (r) => r.headers.get('x-tenant') })
  }, 900_000)
  afterAll(async () => {
    await operator?.close()
    await tenant?.close()
    // PGQUEUE_SCALE_KEEP=1 leaves the fixture for EXPLAIN by hand (drop the schema and roles after).
    if (process.env.PGQUEUE_SCALE_KEEP === '1' || REUSE) {
      log(`kept schema ${t.schema}`)
      await t.admin.end()
    } else await t?.cleanup()
  })

  it('answers every page, and prints the median server time of each', async () => {
    const live = await t.admin.query(`select id from "${t.schema}".jobs where tenant_id = 't7' order by id desc offset 500 limit 1`)
    const hist = await t.admin.query(`select id from "${t.schema}".job_history where tenant_id = 't7' order by finished_at desc offset 500 limit 1`)
    const pages = [
      '/', '/?range=7d', '/queues', '/jobs', '/jobs?state=pending', '/jobs?state=failed', '/jobs?state=finished&queue=q3',
      `/jobs?target=${encodeURIComponent('customer.id=42')}`, `/jobs?state=finished&target=${encodeURIComponent('customer.id=42')}`,
      `/jobs/${live.rows[0].id}`, `/jobs/${hist.rows[0].id}`, '/schedules', '/failures', '/failures?window=7d',
    ]
    // PGQUEUE_SCALE_PAGES=/queues,/failures measures only the pages whose path starts with one of these.
    const only = process.env.PGQUEUE_SCALE_PAGES?.split(',')
    const rows: string[] = []
    for (const path of pages.filter((p) => only === undefined || only.some((o) => p.startsWith(o) && (o !== '/' || p === '/' || p.startsWith('/?'))))) {
      await liveCounts()
      const op = await pageTime(operator, path.startsWith('/jobs/') ? `${path}?tenant=t7` : path)
      const tn = await pageTime(tenant, path)
      rows.push(`| \`${path}\` | ${op.toFixed(0)} | ${tn.toFixed(0)} |`)
    }
    log(`\n| page | operator ms | tenant ms |\n| --- | --- | --- |\n${rows.join('\n')}`)
  }, 600_000)
})
