import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createIsolatedDatabase, type IsolatedDatabase } from '@pgqueue/testing'
import { connect, createHistoryPartition, listHistoryPartitions, migrate, uuidv7, type Connection } from '@pgqueue/core/internal'

let t: IsolatedDatabase
let conn: Connection
beforeAll(async () => {
  t = await createIsolatedDatabase('parts')
  await migrate(t.adminUrl, t.schemaOptions)
  conn = connect(t.adminUrl, { max: 3 })
})
afterAll(async () => {
  await conn.close()
  await t.cleanup()
})

describe('history partitions', () => {
  it('creates a partition once, moving rows that landed in the default partition', async () => {
    const at = new Date('2026-05-10T15:00:00Z')
    await t.admin.query(
      `insert into "${t.schema}".job_history (tenant_id, id, queue, type, state, attempt, max_attempts, created_at, run_at, finished_at)
       values ('a', $1, 'q', 't', 'completed', 1, 1, now(), now(), '2026-05-10T01:00:00Z'), ('a', $2, 'q', 't', 'completed', 1, 1, now(), now(), '2026-05-11T01:00:00Z')`,
      [uuidv7(), uuidv7()],
    )
    const [p1, p2] = await Promise.all([
      createHistoryPartition(conn.db, at, t.schemaOptions),
      createHistoryPartition(conn.db, at, t.schemaOptions),
    ])
    expect([p1!.created, p2!.created].sort()).toEqual([false, true])
    expect(p1!.name).toBe('job_history_p20260510')
    expect(p1!.movedRows + p2!.movedRows).toBe(1)
    const parts = await listHistoryPartitions(conn.db, t.schemaOptions)
    expect(parts).toEqual([{ name: 'job_history_p20260510', from: new Date('2026-05-10T00:00:00Z'), to: new Date('2026-05-11T00:00:00Z') }])
    const { rows } = await t.admin.query(`select tableoid::regclass::text as part from "${t.schema}".job_history order by finished_at`)
    expect(rows.map((r) => r.part.replace(/^.*\./, '').replace(/"/g, ''))).toEqual(['job_history_p20260510', 'job_history_default'])
  })

  it('gives the roles no direct access to a new partition', async () => {
    const { rows } = await t.admin.query(
      `select has_table_privilege($1, $2, 'select') as w, has_table_privilege($3, $2, 'select') as u`,
      [t.workerRole, `"${t.schema}".job_history_p20260510`, t.userRole],
    )
    expect(rows[0]).toEqual({ w: false, u: false })
  })
})
