import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import pg from 'pg'
import { createIsolatedDatabase, type IsolatedDatabase } from '@pgqueue/testing'
import { checkInstallation, LATEST_SCHEMA_VERSION, migrate, PgQueueSetupError } from '@pgqueue/core/internal'

let t: IsolatedDatabase
const pools: pg.Pool[] = []
const pool = (url: string) => {
  const p = new pg.Pool({ connectionString: url, max: 1 })
  p.on('error', () => {})
  pools.push(p)
  return p
}

beforeAll(async () => {
  t = await createIsolatedDatabase('install')
})
afterAll(async () => {
  await Promise.all(pools.map((p) => p.end()))
  await t.cleanup()
})

async function setupError(p: pg.Pool, accepted: Parameters<typeof checkInstallation>[1]['accepted']): Promise<string> {
  const err = await checkInstallation(p, { schema: t.schema, component: 'Worker', accepted }).then(() => null, (e: unknown) => e)
  expect(err).toBeInstanceOf(PgQueueSetupError)
  return (err as Error).message
}

describe('checkInstallation', () => {
  it('says to run initialize() before the schema exists', async () => {
    expect(await setupError(pool(t.workerUrl), ['worker'])).toMatch(/Worker: pgqueue is not installed .* run pgqueue.initialize\(adminUrl/)
  })

  it('says which login to use when the role is wrong, and accepts the right one', async () => {
    await migrate(t.adminUrl, t.schemaOptions)
    expect(await checkInstallation(pool(t.workerUrl), { schema: t.schema, component: 'Worker', accepted: ['worker', 'owner'] })).toBe('worker')
    expect(await checkInstallation(pool(t.adminUrl), { schema: t.schema, component: 'Maintenance', accepted: ['owner'] })).toBe('owner')
    expect(await setupError(pool(t.userUrl), ['worker', 'owner'])).toMatch(/this login is a member of the user role .* connect as a member of the worker role/)
    await t.admin.query(`create role "${t.schema}_nobody" login password 'x'`)
    const nobody = new URL(t.adminUrl)
    nobody.username = `${t.schema}_nobody`
    nobody.password = 'x'
    expect(await setupError(pool(nobody.toString()), ['worker'])).toMatch(/holds no pgqueue role .* connect as a member of the worker role/)
    await Promise.all(pools.splice(0).map((p) => p.end()))
    await t.admin.query(`drop role "${t.schema}_nobody"`)
  })

  it('says to run initialize() when the schema is behind this build, and to upgrade when it is ahead', async () => {
    await t.admin.query(`insert into "${t.schema}".migrations (version, name, checksum) values ($1, 'from the future', 'x')`, [LATEST_SCHEMA_VERSION + 1])
    expect(await setupError(pool(t.workerUrl), ['worker'])).toMatch(new RegExp(`version ${LATEST_SCHEMA_VERSION + 1}, newer than this build .* upgrade pgqueue`))
    await t.admin.query(`delete from "${t.schema}".migrations where version >= $1`, [LATEST_SCHEMA_VERSION])
    const { rows } = await t.admin.query(`select max(version) as v from "${t.schema}".migrations`)
    expect(await setupError(pool(t.workerUrl), ['worker'])).toMatch(new RegExp(`at version ${rows[0].v} .* needs ${LATEST_SCHEMA_VERSION}: run pgqueue.initialize`))
  })

  it('lets a schema owner that is not a superuser push for any tenant, as a ScheduleRunner run by the admin does', async () => {
    const owner = `${t.schema}_owner`
    const schema = `${t.schema}_o`
    await t.admin.query(`create role "${owner}" login password 'x'`)
    const { rows: db } = await t.admin.query('select current_database() as d')
    await t.admin.query(`grant create on database "${db[0].d}" to "${owner}"`)
    const url = new URL(t.adminUrl)
    url.username = owner
    url.password = 'x'
    const p = pool(url.toString())
    try {
      await migrate(url.toString(), { ...t.schemaOptions, schema, createRoles: false })
      const { rows } = await p.query(
        `select outcome from "${schema}".push_jobs('any-tenant', array[gen_random_uuid()], array['q'], array['t'], array[null::text], array[null::bytea],
           array[null::text], array[null::jsonb], array[0], array[null::timestamptz], array[1], array[null::jsonb], array[null::uuid], array[null::uuid])`)
      expect(rows).toEqual([{ outcome: 'created' }])
    } finally {
      await Promise.all(pools.splice(0).map((x) => x.end()))
      await t.admin.query(`drop schema if exists "${schema}" cascade`)
      await t.admin.query(`revoke create on database "${db[0].d}" from "${owner}"`)
      await t.admin.query(`drop owned by "${owner}"`)
      await t.admin.query(`drop role "${owner}"`)
    }
  })
})
