import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import pg from 'pg'
import { createIsolatedDatabase, type IsolatedDatabase } from '@pgqueue/testing'
import { migrate, migrations, migrationChecksum, PgQueueMigrationError, PgQueueRoleSetupError, type Migration } from '@pgqueue/core/internal'

let t: IsolatedDatabase
beforeAll(async () => {
  t = await createIsolatedDatabase('migrate')
})
afterAll(async () => {
  await t.cleanup()
})

async function tables(schema: string): Promise<string[]> {
  const { rows } = await t.admin.query<{ relname: string }>(
    `select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 and c.relkind in ('r', 'p') order by 1`,
    [schema],
  )
  return rows.map((r) => r.relname)
}

describe('migrate', () => {
  it('creates the schema from empty, then is a no-op', async () => {
    const first = await migrate(t.adminUrl, t.schemaOptions)
    expect(first.applied).toEqual(migrations.map((m) => m.version))
    expect(await tables(t.schema)).toEqual([
      'completion_counts',
      'fair_blocks',
      'fair_weights',
      'flow_edges',
      'flow_nodes',
      'history_rollup_hours',
      'history_rollup_minutes',
      'job_history',
      'job_history_default',
      'jobs',
      'live_counts',
      'locks',
      'migrations',
      'nodes',
      'queue_clocks',
      'queue_defaults',
      'queues',
      'rate_limits',
      'schedules',
      'stats_rollup_state',
      'tenant_secret',
      'worker_metadata',
    ])
    // The all-tenant stats tables: the worker role reads them, the user role gets nothing.
    for (const table of ['history_rollup_hours', 'history_rollup_minutes', 'live_counts', 'stats_rollup_state']) {
      const { rows: priv } = await t.admin.query(
        `select has_table_privilege($1, $3, 'select') as w, has_table_privilege($1, $3, 'insert') as wi,
                has_table_privilege($2, $3, 'select') as u`,
        [t.workerRole, t.userRole, `"${t.schema}".${table}`],
      )
      expect(priv[0], table).toEqual({ w: true, wi: false, u: false })
    }
    const second = await migrate(t.adminUrl, t.schemaOptions)
    expect(second.applied).toEqual([])
    expect(second.version).toBe(first.version)
    const { rows } = await t.admin.query(`select version, checksum from "${t.schema}".migrations order by version`)
    expect(rows).toEqual(migrations.map((m) => ({ version: m.version, checksum: migrationChecksum(m) })))
  })

  it('applies each migration once when several processes run at once', async () => {
    const other = await createIsolatedDatabase('migrate_conc')
    try {
      const results = await Promise.all(Array.from({ length: 5 }, () => migrate(other.adminUrl, other.schemaOptions)))
      const applied = results.flatMap((r) => r.applied).sort((a, b) => a - b)
      expect(applied).toEqual(migrations.map((m) => m.version))
      const { rows } = await other.admin.query(`select count(*)::int as n from "${other.schema}".migrations`)
      expect(rows[0].n).toBe(migrations.length)
    } finally {
      await other.cleanup()
    }
  })

  it('upgrades from an older recorded version', async () => {
    const other = await createIsolatedDatabase('migrate_up')
    try {
      const extra: Migration = { version: 9999, name: 'test_extra', sql: 'create table :schema.test_extra (id int primary key);' }
      const old = await migrate(other.adminUrl, { ...other.schemaOptions, migrations })
      expect(old.applied.length).toBe(migrations.length)
      const up = await migrate(other.adminUrl, { ...other.schemaOptions, migrations: [...migrations, extra] })
      expect(up.applied).toEqual([9999])
      expect(up.version).toBe(9999)
      expect(await tables(other.schema)).toContain('test_extra')
      // The older build now meets a version it does not know.
      await expect(migrate(other.adminUrl, { ...other.schemaOptions, migrations })).rejects.toThrow(/does not know/)
    } finally {
      await other.cleanup()
    }
  })

  it('refuses a tampered checksum', async () => {
    await t.admin.query(`update "${t.schema}".migrations set checksum = 'tampered' where version = 1`)
    try {
      const err = await migrate(t.adminUrl, t.schemaOptions).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(PgQueueMigrationError)
      expect((err as PgQueueMigrationError).version).toBe(1)
      expect((err as Error).message).toMatch(/different checksum/)
    } finally {
      await t.admin.query(`update "${t.schema}".migrations set checksum = $1 where version = 1`, [migrationChecksum(migrations[0]!)])
    }
  })

  it('names the missing role when the admin may not create roles', async () => {
    const schema = `pgq_norole_${Date.now().toString(36)}`
    const login = `${schema}_admin`
    await t.admin.query(`create role "${login}" login password 'pw'`)
    await t.admin.query(`grant create on database ${pg.escapeIdentifier((await t.admin.query('select current_database() as d')).rows[0].d)} to "${login}"`)
    const url = new URL(t.adminUrl)
    url.username = login
    url.password = 'pw'
    try {
      const err = await migrate(url.toString(), { schema, workerRole: `${schema}_w`, userRole: `${schema}_u` }).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(PgQueueRoleSetupError)
      expect((err as Error).message).toContain(`${schema}_w`)
    } finally {
      await t.admin.query(`drop schema if exists "${schema}" cascade`)
      await t.admin.query(`drop owned by "${login}"`)
      await t.admin.query(`drop role "${login}"`)
    }
  })

  it('renames nothing it should not: the schema option and role names are used everywhere', async () => {
    const { rows } = await t.admin.query<{ grantee: string }>(
      `select distinct grantee from information_schema.role_table_grants where table_schema = $1 order by 1`,
      [t.schema],
    )
    const grantees = rows.map((r) => r.grantee).filter((g) => g !== 'postgres' && g !== 'root')
    expect(grantees.sort()).toEqual([t.userRole, t.workerRole].sort())
  })

  it('tells a login that may not create the schema which GRANT to run', async () => {
    const login = `${t.schema}_nocreate`
    await t.admin.query(`create role "${login}" login password 'x'`)
    try {
      const url = new URL(t.adminUrl)
      url.username = login
      url.password = 'x'
      const err = await migrate(url.toString(), { ...t.schemaOptions, schema: `${t.schema}_x`, createRoles: false }).then(() => null, (e: unknown) => e)
      expect(err).toBeInstanceOf(PgQueueMigrationError)
      expect((err as Error).message).toMatch(new RegExp(`cannot create schema .* as ${login}: run GRANT CREATE ON DATABASE .* TO "${login}"`))
    } finally {
      await t.admin.query(`drop role "${login}"`)
    }
  })
})
