import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import pg from 'pg'
import { createIsolatedDatabase, pushJobs, type IsolatedDatabase } from '@pgqueue/testing'
import { migrate } from '@pgqueue/core'
import { Scheduler } from '@pgqueue/scheduler'

let t: IsolatedDatabase
let pool: pg.Pool
const q = (s: string) => s.replaceAll('S.', `"${t.schema}".`)

beforeAll(async () => {
  t = await createIsolatedDatabase('schedfair')
  await migrate(t.adminUrl, t.schemaOptions)
  pool = new pg.Pool({ connectionString: t.workerUrl, max: 3 })
})
afterAll(async () => {
  await pool?.end()
  await t.cleanup()
})

async function stateOf(tenant: string, queue: string): Promise<string[]> {
  const { rows } = await t.admin.query(q(`select state from S.jobs where tenant_id = $1 and queue = $2`), [tenant, queue])
  return rows.map((r) => r.state)
}

describe('Scheduler fairness across tenants', () => {
  it('one tenant\'s 300 paused queues do not delay another tenant\'s capped job', async () => {
    await t.admin.query(q(`insert into S.queues (tenant_id, queue, paused) select 'a', 'p-' || lpad(i::text, 3, '0'), true from generate_series(1, 300) i`))
    for (let i = 1; i <= 300; i++) await pushJobs(pool, t.schema, 'a', `p-${String(i).padStart(3, '0')}`, 1)
    await t.admin.query(q(`insert into S.queues (tenant_id, queue, max_concurrency) values ('b', 'capped', 1)`))
    await pushJobs(pool, t.schema, 'b', 'capped', 1)
    expect(await stateOf('b', 'capped')).toEqual(['held'])
    const s = Scheduler.create(t.workerUrl, { schema: t.schema })
    try {
      await s.runOnce()
      expect(await stateOf('b', 'capped')).toEqual(['pending'])
    } finally {
      await s.close()
    }
  })

  it('one tenant\'s flood of due jobs does not hold back another tenant\'s', async () => {
    const due = new Date(Date.now() + 3_000)
    await pushJobs(pool, t.schema, 'late', 'due', 1, { runAt: new Date(due.getTime() + 5) })
    await pushJobs(pool, t.schema, 'flood', 'due', 3_000, { runAt: due })
    expect(await stateOf('late', 'due')).toEqual(['scheduled'])
    await new Promise((r) => setTimeout(r, due.getTime() + 100 - Date.now()))
    const s = Scheduler.create(t.workerUrl, { schema: t.schema, promoteBatchSize: 100 })
    try {
      await s.runOnce()
      expect(await stateOf('late', 'due')).toEqual(['pending'])
      const { rows } = await t.admin.query(q(`select count(*)::int n from S.jobs where tenant_id = 'flood' and state = 'pending'`))
      // Its equal part of each batch, not the whole pass.
      expect(rows[0].n).toBeGreaterThan(0)
      expect(rows[0].n).toBeLessThan(3_000)
    } finally {
      await s.close()
    }
  })
})
