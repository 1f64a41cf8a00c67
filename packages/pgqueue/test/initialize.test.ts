import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import pg from 'pg'
import { createIsolatedDatabase, type IsolatedDatabase } from '@pgqueue/testing'
import pgqueue, { initialize } from 'pgqueue'

let t: IsolatedDatabase
beforeAll(async () => {
  t = await createIsolatedDatabase('umbrella')
})
afterAll(async () => {
  await t.cleanup()
})

describe('initialize', () => {
  it('migrates from a URL and from a pool, idempotently', async () => {
    const first = await pgqueue.initialize(t.adminUrl, t.schemaOptions)
    expect(first.applied.length).toBeGreaterThan(0)
    const pool = new pg.Pool({ connectionString: t.adminUrl, max: 2 })
    try {
      const again = await initialize(pool, t.schemaOptions)
      expect(again.applied).toEqual([])
      // The caller's pool stays open.
      expect((await pool.query('select 1 as one')).rows[0].one).toBe(1)
    } finally {
      await pool.end()
    }
  })
})
