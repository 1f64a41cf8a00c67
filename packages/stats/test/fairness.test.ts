import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import pg from 'pg'
import { createIsolatedDatabase, type IsolatedDatabase } from '@pgqueue/testing'
import { fairWeightSet, migrate, PgQueueTenantRequiredError, PgQueueValidationError, rateLimitSet } from '@pgqueue/core'
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

  it('shows rate limits with their tokens, and each tenant\'s recent share', async () => {
    await rateLimitSet(pool, { schema: t.schema, tenantId: 'a', queue: 'api', capacity: 20, ratePerSec: 5 })
    await rateLimitSet(pool, { schema: t.schema, tenantId: null, queue: 'api', capacity: 50, ratePerSec: 10 })
    await t.admin.query(`update "${t.schema}".rate_limits set tokens = 4, refilled_at = clock_timestamp() where tenant_id = 'a'`)
    const S = `"${t.schema}"`
    for (const [tenant, n] of [['a', 3], ['b', 1]] as const) {
      await t.admin.query(
        `insert into ${S}.job_history (tenant_id, id, queue, type, state, attempt, max_attempts, created_at, run_at, started_at, finished_at)
         select $1, gen_random_uuid(), 'api', 't', 'completed', 1, 5, now(), now(), now(), now() from generate_series(1, $2)`,
        [tenant, n],
      )
    }
    const stats = Stats.create(t.workerUrl, { schema: t.schema })
    try {
      const all = await stats.fairness({ windowMs: 60_000 })
      expect(all.rateLimits.map((r) => [r.tenantId, r.queue, r.capacity, r.ratePerSec])).toEqual([[null, 'api', 50, 10], ['a', 'api', 20, 5]])
      const a = all.rateLimits.find((r) => r.tenantId === 'a')!
      expect(a.tokens).toBeGreaterThanOrEqual(4)
      expect(a.tokens).toBeLessThan(6)
      expect(all.shares).toEqual([{ tenantId: 'a', jobs: 3, share: 0.75 }, { tenantId: 'b', jobs: 1, share: 0.25 }])
      expect(all.windowMs).toBe(60_000)
      const b = await stats.fairness({ tenantId: 'b' })
      expect(b.shares).toEqual([{ tenantId: 'b', jobs: 1, share: 0.25 }])
      expect(b.rateLimits).toEqual([])
      await expect(stats.fairness({ windowMs: 0 })).rejects.toBeInstanceOf(PgQueueValidationError)
    } finally {
      await stats.close()
    }
  })
})
