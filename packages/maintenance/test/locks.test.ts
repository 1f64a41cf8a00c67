import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import pg from 'pg'
import { createIsolatedDatabase, tenantToken, waitFor, type IsolatedDatabase } from '@pgqueue/testing'
import { migrate, uuidv7, type Clock } from '@pgqueue/core/internal'
import { Maintenance } from '@pgqueue/maintenance'

function fixedClock(iso: string): Clock {
  const at = new Date(iso)
  return { now: () => at }
}

/** Keys the tasks took with pg_try_advisory_xact_lock before the locks table. */
function oldAdvisoryKeys(schema: string): string[] {
  return [
    `select pg_advisory_lock(hashtext('pgqueue.partitions:${schema}'))`,
    ...['rollup', 'liveCounts', 'nodes', 'leases'].map((task) => `select pg_advisory_lock(hashtext('pgqueue.maintenance'), hashtext('${schema}:${task}'))`),
  ]
}

let t: IsolatedDatabase
let nobodyUrl: string
const nobody = () => `${t.schema}_nobody`

beforeAll(async () => {
  t = await createIsolatedDatabase('maint_locks')
  await migrate(t.adminUrl, t.schemaOptions)
  await t.admin.query(`create role "${nobody()}" login password 'pw'`)
  const u = new URL(t.adminUrl)
  u.username = nobody()
  u.password = 'pw'
  nobodyUrl = u.toString()
})
afterAll(async () => {
  await t.admin.query(`select pg_terminate_backend(pid) from pg_stat_activity where usename = $1`, [nobody()])
  await t.admin.query(`drop role if exists "${nobody()}"`)
  await t.cleanup()
})

describe('coordination locks only pgqueue can take', () => {
  it('runs every task while a login with no pgqueue role holds the old advisory keys', async () => {
    const hostile = new pg.Client({ connectionString: nobodyUrl })
    await hostile.connect()
    try {
      for (const q of oldAdvisoryKeys(t.schema)) await hostile.query(q)
      const report = await Maintenance.runOnce(t.adminUrl, { ...t.schemaOptions, clock: fixedClock('2033-03-01T00:00:00Z'), partitionsAhead: 1, tasks: { vacuum: false } })
      for (const task of ['partitions', 'retention', 'nodes', 'leases', 'rollup', 'liveCounts'] as const) {
        expect(report[task], task).toBeDefined()
        expect((report[task] as { skipped?: string }).skipped, task).toBeUndefined()
      }
      expect(report.partitions!.created.map((p) => p.name)).toEqual(['job_history_p20330301', 'job_history_p20330302'])
    } finally {
      await hostile.end()
    }
  })

  it('lets neither a stranger nor the worker or user role lock the rows or the migrations table', async () => {
    for (const url of [nobodyUrl, t.workerUrl, t.userUrl]) {
      const c = new pg.Client({ connectionString: url })
      await c.connect()
      try {
        for (const sqlText of [
          `select * from "${t.schema}".locks for update`,
          `select * from "${t.schema}".locks for key share`,
          `lock table "${t.schema}".locks in access share mode`,
          `lock table "${t.schema}".migrations in access share mode`,
        ]) {
          await c.query('begin')
          const code = await c.query(sqlText).then(() => 'ok', (e: { code?: string }) => e.code)
          await c.query('rollback')
          expect(code, `${url.replace(/:[^:@]*@/, '@')}: ${sqlText}`).toBe('42501')
        }
      } finally {
        await c.end()
      }
    }
  })

  it('a second instance skips a task another instance holds', async () => {
    const holder = await t.admin.connect()
    try {
      await holder.query('begin')
      await holder.query(`select * from "${t.schema}".locks where name = 'maintenance:nodes' for update`)
      const report = await Maintenance.runOnce(t.adminUrl, { ...t.schemaOptions, tasks: { partitions: false, retention: false, vacuum: false } })
      expect(report.nodes!.skipped).toBe('locked')
      expect(report.leases!.skipped).toBeUndefined()
    } finally {
      await holder.query('rollback')
      holder.release()
    }
  })
})

describe('partition DDL and a tenant reading history', () => {
  it('delays only the partitions task, for at most ddlLockTimeoutMs; history inserts wait no longer; the next run creates it', async () => {
    const ddlLockTimeoutMs = 300
    const opts = { ...t.schemaOptions, clock: fixedClock('2034-07-01T00:00:00Z'), partitionsAhead: 0, ddlLockTimeoutMs, tasks: { retention: false, nodes: false, leases: false, vacuum: false, rollup: false, liveCounts: false } }
    const user = new pg.Client({ connectionString: t.userUrl })
    const worker = new pg.Client({ connectionString: t.workerUrl })
    await user.connect()
    await worker.connect()
    try {
      // A tenant's open transaction that read its history: ACCESS SHARE on job_history and its partitions.
      await user.query('begin')
      await user.query(`select set_config('pgqueue.tenant', 'a', true), set_config('pgqueue.tenant_token', $1, true)`, [tenantToken('a')])
      await user.query(`select count(*) from "${t.schema}".job_history`)
      const run = Maintenance.runOnce(t.adminUrl, opts)
      // While the task waits for its lock, a worker finishes a job (a history insert).
      await waitFor(async () => {
        const { rows } = await t.admin.query(`select 1 from pg_stat_activity where application_name = 'pgqueue-maintenance' and wait_event_type = 'Lock'`)
        return rows.length > 0
      }, { intervalMs: 5, message: 'the partitions task waiting for a lock' })
      const insertStarted = performance.now()
      await worker.query(
        `insert into "${t.schema}".job_history (tenant_id, id, queue, type, state, attempt, max_attempts, created_at, run_at)
         values ('b', $1, 'q', 't', 'completed', 1, 1, now(), now())`,
        [uuidv7()],
      )
      const insertWaitMs = performance.now() - insertStarted
      const report = await run
      expect(report.partitions!.skipped).toBe('lock-timeout')
      expect(report.partitions!.created).toEqual([])
      expect(insertWaitMs).toBeLessThan(ddlLockTimeoutMs + 1_000)
      console.log(`[figure] history insert waited ${Math.round(insertWaitMs)} ms behind the partitions task (ddlLockTimeoutMs ${ddlLockTimeoutMs})`)
    } finally {
      await user.query('rollback')
      await user.end()
      await worker.end()
    }
    const next = await Maintenance.runOnce(t.adminUrl, opts)
    expect(next.partitions!.created.map((p) => p.name)).toEqual(['job_history_p20340701'])
  })
})
