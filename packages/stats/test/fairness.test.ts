import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import pg from 'pg'
import { createIsolatedDatabase, type IsolatedDatabase } from '@pgqueue/testing'
import { fairWeightSet, migrate, PgQueueTenantRequiredError } from '@pgqueue/core'
import { Stats } from '@pgqueue/stats'

let t: IsolatedDatabase
let pool: pg.Pool

beforeAll(async () => {
  t = await createIsolatedDatabase('statsfair')
  await migrate(t.adminUrl, t.schemaOptions)
  pool = new pg.Pool({ connectionString: t.workerUrl, max: 1 })
})
afterAll(async () => {
  await pool?.end()
  await t.cleanup()
})

describe('Stats.fairness', () => {
  it('shows weights and running back-offs to the worker role', async () => {
    await fairWeightSet(pool, { schema: t.schema, tenantId: 'a', weight: 3 })
    await fairWeightSet(pool, { schema: t.schema, tenantId: 'a', queue: 'mail', weight: 0.5 })
    await t.admin.query(`insert into "${t.schema}".fair_blocks (tenant_id, queue, until) values ('b', 'api', now() + interval '1 minute'), ('c', 'api', now() - interval '1 minute')`)
    const stats = Stats.create(t.workerUrl, { schema: t.schema })
    try {
      const all = await stats.fairness()
      expect(all.weights).toEqual([{ tenantId: 'a', queue: null, weight: 3 }, { tenantId: 'a', queue: 'mail', weight: 0.5 }])
      expect(all.backOffs.map((b) => [b.tenantId, b.queue])).toEqual([['b', 'api']])
      expect(all.backOffs[0]!.until.getTime()).toBeGreaterThan(Date.now())
      expect((await stats.fairness({ tenantId: 'b' })).weights).toEqual([])
      await expect(stats.fairness({ tenantId: '' })).rejects.toBeInstanceOf(PgQueueTenantRequiredError)
    } finally {
      await stats.close()
    }
  })
})
