import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createIsolatedDatabase, type IsolatedDatabase } from '@pgqueue/testing'
import { migrate, DATABASE_LIMITS, LIMITS, MAX_TENANT_ID_LENGTH } from '@pgqueue/core/internal'

let t: IsolatedDatabase
beforeAll(async () => {
  t = await createIsolatedDatabase('limits_schema')
  await migrate(t.adminUrl, t.schemaOptions)
})
afterAll(async () => {
  await t.cleanup()
})

/** Every check constraint of the schema's tables, by name. */
async function checks(): Promise<Map<string, string>> {
  const { rows } = await t.admin.query<{ name: string; def: string }>(
    `select c.conname as name, pg_get_constraintdef(c.oid) as def
       from pg_constraint c join pg_class r on r.oid = c.conrelid join pg_namespace n on n.oid = r.relnamespace
      where n.nspname = $1 and c.contype = 'c' and not r.relispartition`,
    [t.schema],
  )
  return new Map(rows.map((r) => [r.name, r.def]))
}

describe('the database limits match core LIMITS', () => {
  it('byte limits of names, and the payload cap', async () => {
    const defs = await checks()
    const expectBytes = (name: string, max: number) => {
      expect(defs.get(name), name).toMatch(new RegExp(`octet_length\\(\\w+\\) >= 1\\) AND \\(octet_length\\(\\w+\\) <= ${max}\\)`))
    }
    for (const table of ['jobs', 'job_history', 'queues', 'schedules', 'worker_metadata']) expectBytes(`${table}_tenant_id_bytes`, MAX_TENANT_ID_LENGTH)
    for (const table of ['jobs', 'job_history', 'queues', 'schedules']) expectBytes(`${table}_queue_bytes`, LIMITS.queueName)
    for (const table of ['jobs', 'job_history', 'schedules']) expectBytes(`${table}_type_bytes`, LIMITS.type)
    for (const table of ['jobs', 'job_history', 'schedules', 'worker_metadata']) expectBytes(`${table}_key_bytes`, LIMITS.key)
    for (const table of ['jobs', 'job_history', 'schedules']) expectBytes(`${table}_payload_type_bytes`, LIMITS.payloadType)
    expectBytes('schedules_cron_bytes', LIMITS.cron)
    for (const table of ['jobs', 'job_history', 'schedules']) expect(defs.get(`${table}_payload_bytes`)).toContain(`<= ${DATABASE_LIMITS.payloadBytes}`)
    expect(defs.get('jobs_target_size')).toContain(`<= ${DATABASE_LIMITS.jsonStoredBytes}`)
    expect(defs.get('jobs_priority_range')).toContain(`>= '-${LIMITS.priority}'`)
    expect(LIMITS.payloadBytes).toBeLessThanOrEqual(DATABASE_LIMITS.payloadBytes)
  })

  it('leaves the locks table to the owner alone', async () => {
    const { rows } = await t.admin.query(
      `select has_table_privilege($1, $3, 'select, update') as w, has_table_privilege($2, $3, 'select, update') as u,
              array(select name from ${`"${t.schema}".locks`} order by name) as names`,
      [t.workerRole, t.userRole, `"${t.schema}".locks`],
    )
    expect(rows[0]).toEqual({ w: false, u: false, names: ['maintenance:leases', 'maintenance:liveCounts', 'maintenance:nodes', 'maintenance:rollup', 'partitions'] })
  })
})
