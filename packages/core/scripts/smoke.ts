// Runtime smoke check (run under Bun and Node): migrates a fresh schema, pushes a job as a
// row-level-security login, checks tenant isolation, and drops everything again.
//   bun --conditions=@pgqueue/source packages/core/scripts/smoke.ts [superuser-url]
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { migrate, uuidv7, withTenantTransaction, connect, TenantKey } from '@pgqueue/core/internal'

const adminUrl = process.argv[2] ?? process.env.PGQUEUE_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const runtime = typeof (globalThis as { Bun?: { version: string } }).Bun !== 'undefined' ? `bun ${(globalThis as unknown as { Bun: { version: string } }).Bun.version}` : `node ${process.version}`
const base = `pgq_smoke_${randomBytes(4).toString('hex')}`
const opts = { schema: base, workerRole: `${base}_worker`, userRole: `${base}_user` }
const admin = new pg.Pool({ connectionString: adminUrl, max: 2 })
const login = `${base}_login`

function check(cond: unknown, what: string): void {
  if (!cond) throw new Error(`smoke check failed: ${what}`)
  console.log(`ok - ${what}`)
}

try {
  const result = await migrate(adminUrl, opts)
  check(result.applied.length > 0, `migrated ${base} (versions ${result.applied.join(', ')}) on ${runtime}`)
  const key = TenantKey.resolve(result.tenantSecret)
  await admin.query(`create role "${login}" login password 'smoke' in role "${opts.userRole}"`)
  const url = new URL(adminUrl)
  url.username = login
  url.password = 'smoke'
  const user = connect(url.toString(), { max: 2 })
  try {
    const id = uuidv7()
    const { rows } = await user.pool.query(
      `select outcome from "${base}".push_jobs($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
      ['acme', key.token('acme'), [id], ['emails'], ['send'], [null], [Buffer.from('hi')], ['text/plain'], ['{"to":"a@b.c"}'], [0], [null], [3], [null], [null], [null]],
    )
    check(rows[0]?.outcome === 'created', 'pushed a job through push_jobs() as the user role')
    const mine = await withTenantTransaction(user.db, key, 'acme', async (trx) => trx.withSchema(base).selectFrom('jobs').select(['id', 'payload']).execute())
    check(mine.length === 1 && mine[0]!.id === id && Buffer.from(mine[0]!.payload!).toString() === 'hi', 'tenant acme reads its job and payload bytes')
    const other = await withTenantTransaction(user.db, key, 'other', async (trx) => trx.withSchema(base).selectFrom('jobs').select('id').execute())
    check(other.length === 0, 'tenant other sees nothing')
    const none = await user.db.withSchema(base).selectFrom('jobs').select('id').execute()
    check(none.length === 0, 'no tenant context sees nothing')
  } finally {
    await user.close()
  }
} finally {
  await admin.query(`drop schema if exists "${base}" cascade`)
  for (const role of [login, opts.userRole, opts.workerRole]) {
    await admin.query(`drop owned by "${role}"`).catch(() => {})
    await admin.query(`drop role if exists "${role}"`).catch(() => {})
  }
  await admin.end()
}
console.log('smoke: 5 passed, 0 failed')
