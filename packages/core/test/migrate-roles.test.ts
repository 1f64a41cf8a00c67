import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createIsolatedDatabase, type IsolatedDatabase } from '@pgqueue/testing'
import { migrate, PgQueueMigrationError, PgQueueRoleSetupError } from '@pgqueue/core'

let t: IsolatedDatabase
beforeAll(async () => {
  t = await createIsolatedDatabase('migroles')
})
afterAll(async () => {
  await t.cleanup()
})

async function schemaExists(schema: string): Promise<boolean> {
  const { rows } = await t.admin.query('select 1 from pg_namespace where nspname = $1', [schema])
  return rows.length > 0
}

describe('migrate() and the two group roles', () => {
  it('refuses one role for both, before creating anything', async () => {
    const err = await migrate(t.adminUrl, { ...t.schemaOptions, userRole: t.workerRole }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(PgQueueRoleSetupError)
    expect((err as Error).message).toMatch(/two different roles/)
    expect(await schemaExists(t.schema)).toBe(false)
  })

  it('refuses a worker role that is a member of the user role, and the other way round, also through a third role', async () => {
    const middle = `${t.schema}_mid`
    await t.admin.query(`create role "${middle}" nologin`)
    try {
      const cases = [
        { grant: `grant "${t.userRole}" to "${t.workerRole}"`, revoke: `revoke "${t.userRole}" from "${t.workerRole}"` },
        { grant: `grant "${t.workerRole}" to "${t.userRole}"`, revoke: `revoke "${t.workerRole}" from "${t.userRole}"` },
        {
          grant: `grant "${t.workerRole}" to "${middle}"; grant "${middle}" to "${t.userRole}"`,
          revoke: `revoke "${middle}" from "${t.userRole}"; revoke "${t.workerRole}" from "${middle}"`,
        },
      ]
      for (const c of cases) {
        await t.admin.query(c.grant)
        try {
          const err = await migrate(t.adminUrl, t.schemaOptions).catch((e: unknown) => e)
          expect(err, c.grant).toBeInstanceOf(PgQueueRoleSetupError)
          expect((err as Error).message).toMatch(/is a member of/)
          expect((err as Error).message).toMatch(/REVOKE/)
          // Nothing was migrated: the jobs table does not exist.
          const { rows } = await t.admin.query(`select to_regclass($1) as r`, [`"${t.schema}".jobs`])
          expect(rows[0].r).toBeNull()
        } finally {
          await t.admin.query(c.revoke)
        }
      }
    } finally {
      await t.admin.query(`drop role "${middle}"`)
    }
    // Apart again: the same call succeeds.
    const ok = await migrate(t.adminUrl, t.schemaOptions)
    expect(ok.applied.length).toBeGreaterThan(0)
  })

  it('gives up with a clear error when another session holds the migrations table past lockTimeoutMs', async () => {
    await migrate(t.adminUrl, t.schemaOptions)
    const holder = await t.admin.connect()
    try {
      await holder.query('begin')
      await holder.query(`lock table "${t.schema}".migrations in exclusive mode`)
      const started = Date.now()
      const err = await migrate(t.adminUrl, { ...t.schemaOptions, lockTimeoutMs: 200 }).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(PgQueueMigrationError)
      expect((err as Error).message).toMatch(/could not lock .*migrations within 200 ms/)
      expect(Date.now() - started).toBeLessThan(5_000)
    } finally {
      await holder.query('rollback')
      holder.release()
    }
  })
})
