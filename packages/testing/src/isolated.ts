import { createHmac, randomBytes } from 'node:crypto'
import pg from 'pg'

/** A schema and role names of one test file's own, with login URLs for each role. */
export interface IsolatedDatabase {
  schema: string
  workerRole: string
  userRole: string
  /** Superuser URL: use for migrations and Maintenance. */
  adminUrl: string
  /** A LOGIN member of the worker group role. */
  workerUrl: string
  /** A LOGIN member of the user group role (row-level security applies). */
  userUrl: string
  /** This file's tenant secret (also in schemaOptions, so migrate() installs it and producers sign with it). */
  tenantSecret: string
  /** Options to pass to migrate()/initialize() and every component. */
  schemaOptions: { schema: string; workerRole: string; userRole: string; tenantSecret: string }
  /** A superuser pool for assertions on raw rows. */
  admin: pg.Pool
  /** Drops the schema and every role made for it, and ends the pool. */
  cleanup(): Promise<void>
}

/**
 * The token that signs a transaction in as `tenant` under the test file's tenant secret. The same formula
 * as core's TenantKey.token() (this package cannot import core, which tests with it); core's RLS test
 * checks that the two agree.
 */
export function tenantToken(tenant: string, secret = process.env.PGQUEUE_TENANT_SECRET): string {
  if (secret === undefined) throw new Error('no tenant secret: call createIsolatedDatabase() first')
  return createHmac('sha256', secret).update(tenant, 'utf8').digest('hex')
}

/** The superuser URL the global setup resolved. */
export function testDatabaseUrl(): string {
  const url = process.env.PGQUEUE_TEST_RESOLVED_URL ?? process.env.PGQUEUE_TEST_DATABASE_URL
  if (!url) throw new Error('no test database: run the tests through vitest (its global setup starts one)')
  return url
}

function withUser(url: string, user: string, password: string): string {
  const u = new URL(url)
  u.username = user
  u.password = password
  return u.toString()
}

/**
 * Creates the group roles (NOLOGIN) and one LOGIN member of each, named after a fresh random schema,
 * so test files run in parallel without sharing anything. The schema itself is left to migrate().
 */
export async function createIsolatedDatabase(label = 't'): Promise<IsolatedDatabase> {
  const adminUrl = testDatabaseUrl()
  const base = `pgq_${label.replace(/[^a-z0-9_]/gi, '').toLowerCase().slice(0, 20)}_${randomBytes(4).toString('hex')}`
  const schema = base
  const workerRole = `${base}_worker`
  const userRole = `${base}_user`
  const workerLogin = `${base}_wl`
  const userLogin = `${base}_ul`
  const password = randomBytes(8).toString('hex')
  // One secret per test process, in the environment variable every component falls back to, so tests
  // that build a producer with only { schema } sign their tenants too.
  process.env.PGQUEUE_TENANT_SECRET ??= randomBytes(32).toString('base64url')
  const tenantSecret = process.env.PGQUEUE_TENANT_SECRET
  const admin = new pg.Pool({ connectionString: adminUrl, max: 4 })
  admin.on('error', () => {})
  await admin.query(`create role "${workerRole}" nologin`)
  await admin.query(`create role "${userRole}" nologin`)
  await admin.query(`create role "${workerLogin}" login password '${password}' in role "${workerRole}"`)
  await admin.query(`create role "${userLogin}" login password '${password}' in role "${userRole}"`)
  return {
    schema,
    workerRole,
    userRole,
    adminUrl,
    workerUrl: withUser(adminUrl, workerLogin, password),
    userUrl: withUser(adminUrl, userLogin, password),
    tenantSecret,
    schemaOptions: { schema, workerRole, userRole, tenantSecret },
    admin,
    async cleanup() {
      try {
        // End sessions of this file's logins that a failed test may have left behind. Sessions of pools
        // that were just ended may still be closing: give them a moment, or terminating them would
        // raise an error on a client nobody listens to any more.
        const logins = [workerLogin, userLogin]
        for (let i = 0; i < 20; i++) {
          const { rows } = await admin.query(`select count(*)::int as n from pg_stat_activity where usename = any($1)`, [logins])
          if (rows[0].n === 0) break
          await new Promise((r) => setTimeout(r, 50))
        }
        await admin.query(`select pg_terminate_backend(pid) from pg_stat_activity where usename = any($1) and pid <> pg_backend_pid()`, [logins])
        await admin.query(`drop schema if exists "${schema}" cascade`)
        for (const role of [workerLogin, userLogin, workerRole, userRole]) {
          await admin.query(`drop owned by "${role}"`).catch(() => {})
          await admin.query(`drop role if exists "${role}"`).catch(() => {})
        }
      } finally {
        await admin.end()
      }
    },
  }
}

/** Polls `check` until it returns a truthy value or `timeoutMs` passes. */
export async function waitFor<T>(check: () => Promise<T> | T, options: { timeoutMs?: number; intervalMs?: number; message?: string } = {}): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000)
  let last: unknown
  for (;;) {
    try {
      const v = await check()
      if (v) return v
      last = v
    } catch (err) {
      last = err
    }
    if (Date.now() > deadline) throw new Error(`${options.message ?? 'condition'} not met in time (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`)
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 20))
  }
}
