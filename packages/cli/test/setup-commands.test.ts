import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import pg from 'pg'
import { LATEST_SCHEMA_VERSION } from '@pgqueue/core'
import { createIsolatedDatabase, type IsolatedDatabase } from '@pgqueue/testing'
import { bundleCli, runCli } from './cli.js'

let t: IsolatedDatabase
let bin: string
let removeBundle: () => void
let env: Record<string, string>

beforeAll(async () => {
  ;[t, { bin, remove: removeBundle }] = await Promise.all([createIsolatedDatabase('cli_setup'), bundleCli()])
  env = { PGQUEUE_DATABASE_URL: t.adminUrl, PGQUEUE_SCHEMA: t.schema, PGQUEUE_WORKER_ROLE: t.workerRole, PGQUEUE_USER_ROLE: t.userRole, PGQUEUE_TENANT_SECRET: t.tenantSecret }
})
afterAll(async () => {
  removeBundle?.()
  await t?.cleanup()
})

describe('pgqueue migrate, init, status, doctor, maintenance', () => {
  it('status says a missing installation needs attention (exit 5)', async () => {
    const r = await runCli(bin, ['status', '--json'], { env })
    expect(r.code).toBe(5)
    expect(r.json()).toMatchObject({ installed: false, version: 0, latestVersion: LATEST_SCHEMA_VERSION })
    expect(r.json().attention[0]).toMatch(/not installed/)
  })

  it('migrate --dry-run --show-sql lists the pending SQL and writes nothing', async () => {
    const r = await runCli(bin, ['migrate', '--dry-run', '--show-sql', '--json'], { env })
    expect(r.code).toBe(0)
    const out = r.json()
    expect(out.pending.length).toBeGreaterThan(5)
    expect(out.pending[0]).toMatchObject({ version: 1, name: 'initial' })
    expect(out.pending[0].sql).toContain(`"${t.schema}".jobs`)
    const { rows } = await t.admin.query('select 1 from pg_namespace where nspname = $1', [t.schema])
    expect(rows).toHaveLength(0)
  })

  it('migrate applies every migration, then finds nothing to do', async () => {
    const first = await runCli(bin, ['migrate', '--json'], { env })
    expect(first.code, first.stderr).toBe(0)
    expect(first.json()).toMatchObject({ schema: t.schema, version: LATEST_SCHEMA_VERSION })
    expect(first.json().applied).toHaveLength(first.json().applied.length)
    const again = await runCli(bin, ['migrate'], { env })
    expect(again.code).toBe(0)
    expect(again.stdout).toContain(`is current (version ${LATEST_SCHEMA_VERSION})`)
    const init = await runCli(bin, ['init', '--json'], { env })
    expect(init.code).toBe(0)
    expect(init.json()).toMatchObject({ version: LATEST_SCHEMA_VERSION, applied: [], tenantSecret: t.tenantSecret })
  })

  it('status needs attention until Maintenance made partitions and a Scheduler beats; plain text off a TTY', async () => {
    const before = await runCli(bin, ['status', '--json'], { env })
    expect(before.code).toBe(5)
    expect(before.json().attention.join(' ')).toMatch(/partitions.*Scheduler/s)

    const m = await runCli(bin, ['maintenance', '--once', '--json'], { env })
    expect(m.code, m.stderr).toBe(0)
    expect(m.json().partitions.created.length).toBeGreaterThan(1)
    await t.admin.query(`insert into "${t.schema}".nodes (node_id, kind) values ('s1', 'scheduler')`)

    const after = await runCli(bin, ['status', '--json'], { env })
    expect(after.code).toBe(0)
    expect(after.json()).toMatchObject({ installed: true, pendingMigrations: [], attention: [], loginRole: 'owner' })
    expect(after.json().partitions.ahead).toBeGreaterThan(0)
    expect(after.json().nodes).toEqual([expect.objectContaining({ kind: 'scheduler', alive: 1 })])

    const text = await runCli(bin, ['status'], { env })
    expect(text.code).toBe(0)
    expect(text.stdout).toMatch(/^version +\d+ of \d+$/m)
    expect(text.stdout).not.toContain('\u001b[')
  })

  it('doctor passes a fresh installation, then names a partition exposed to a role and how to fix it', async () => {
    const ok = await runCli(bin, ['doctor', '--json'], { env })
    const findings = ok.json().findings as { check: string; level: string; message: string; fix?: string }[]
    for (const check of ['schema', 'roles', 'rls', 'grants', 'partitions', 'dead tuples', 'vacuum horizon', 'pooler']) {
      expect(findings.find((f) => f.check === check), check).toBeDefined()
    }
    expect(findings.filter((f) => f.level !== 'ok')).toEqual([])
    expect(ok.code).toBe(0)

    const { rows } = await t.admin.query<{ name: string }>(
      `select c.relname as name from pg_inherits i join pg_class c on c.oid = i.inhrelid where i.inhparent = '"${t.schema}".job_history'::regclass limit 1`,
    )
    await t.admin.query(`grant select on "${t.schema}"."${rows[0]!.name}" to "${t.userRole}"`)
    const bad = await runCli(bin, ['doctor', '--json'], { env })
    expect(bad.code).toBe(5)
    const rls = (bad.json().findings as { check: string; level: string; message: string; fix: string }[]).find((f) => f.check === 'rls' && f.level === 'error')
    expect(rls?.message).toContain(rows[0]!.name)
    expect(rls?.fix).toMatch(/^REVOKE ALL/)
    await t.admin.query(`revoke select on "${t.schema}"."${rows[0]!.name}" from "${t.userRole}"`)
  })

  it('init --create-logins makes three logins that work where it says', async () => {
    const schema = `${t.schema}_b`
    const names = { admin: `${t.schema}_a1`, worker: `${t.schema}_w1`, user: `${t.schema}_u1` }
    const args = ['init', '--create-logins', '--schema', schema, '--admin-login', names.admin, '--worker-login', names.worker, '--user-login', names.user, '--json']
    try {
      const r = await runCli(bin, args, { env })
      expect(r.code, r.stderr).toBe(0)
      const out = r.json()
      expect(out).toMatchObject({ schema, version: LATEST_SCHEMA_VERSION, logins: names })
      const worker = new pg.Client({ connectionString: out.urls.worker })
      await worker.connect()
      const { rows } = await worker.query(`select login_role from "${schema}".installation()`)
      await worker.end()
      expect(rows[0].login_role).toBe('worker')
      // The user URL pushes with the printed tenant secret.
      const push = await runCli(bin, ['push', '--tenant', 'acme', '--queue', 'q', '--type', 't', '--json'], {
        env: { ...env, PGQUEUE_DATABASE_URL: out.urls.user, PGQUEUE_SCHEMA: schema, PGQUEUE_TENANT_SECRET: out.tenantSecret },
      })
      expect(push.code, push.stderr).toBe(0)
      expect(push.json()).toMatchObject({ queue: 'q', outcome: 'created' })
      // A second run refuses to touch existing logins.
      const again = await runCli(bin, args, { env })
      expect(again.code).toBe(2)
      expect(again.stderr).toMatch(/^pgqueue: login .* exists already: pass --reset-passwords/)
    } finally {
      await t.admin.query(`select pg_terminate_backend(pid) from pg_stat_activity where usename = any($1)`, [Object.values(names)])
      await t.admin.query(`drop schema if exists "${schema}" cascade`)
      for (const n of Object.values(names)) {
        await t.admin.query(`drop owned by "${n}"`).catch(() => {})
        await t.admin.query(`drop role if exists "${n}"`)
      }
    }
  })
})
