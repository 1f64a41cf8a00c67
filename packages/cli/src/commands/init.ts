import { randomBytes } from 'node:crypto'
import type { Command } from '@commander-js/extra-typings'
import pg from 'pg'
import { DEFAULT_USER_ROLE, DEFAULT_WORKER_ROLE, migrate, quoteIdent, quoteLiteral, validateRoleName } from '@pgqueue/core/internal'
import { CliError, EXIT } from '../errors.js'
import type { CommandContext } from '../context.js'
import { action } from '../action.js'

interface InitFlags {
  createLogins?: boolean
  adminLogin: string
  workerLogin: string
  userLogin: string
  resetPasswords?: boolean
}

/** `pgqueue init`: schema and group roles, and with --create-logins the three logins and their URLs. */
export function registerInit(program: Command): void {
  program
    .command('init')
    .description('create the schema and the group roles; with --create-logins also an admin, a worker and a user login, and print their URLs')
    .option('--create-logins', 'create the three logins (needs a superuser or CREATEROLE URL)')
    .option('--admin-login <name>', 'owner of the schema (initialize, Maintenance)', 'pgqueue_admin')
    .option('--worker-login <name>', 'member of the worker role (Worker, Scheduler, ScheduleRunner)', 'pgqueue_worker_login')
    .option('--user-login <name>', 'member of the user role (producers, your API)', 'pgqueue_user_login')
    .option('--reset-passwords', 'give logins that already exist new passwords instead of refusing')
    .action(action(async (ctx, flags: InitFlags) => init(ctx, flags)))
}

async function init(ctx: CommandContext, flags: InitFlags): Promise<number> {
  const workerRole = ctx.settings.workerRole ?? DEFAULT_WORKER_ROLE
  const userRole = ctx.settings.userRole ?? DEFAULT_USER_ROLE
  if (!flags.createLogins) {
    const result = await migrate(ctx.url, { ...ctx.names })
    const out = { schema: result.schema, version: result.version, applied: result.applied, workerRole, userRole, tenantSecret: result.tenantSecret }
    ctx.out.result(out, () => {
      ctx.out.line(`schema ${result.schema} at version ${result.version}${result.applied.length > 0 ? ` (applied ${result.applied.join(', ')})` : ' (already current)'}`)
      ctx.out.line(`group roles: ${workerRole} (workers, schedulers), ${userRole} (producers); grant them to your logins:`)
      ctx.out.line(`  GRANT ${quoteIdent(workerRole)} TO <worker login>;  GRANT ${quoteIdent(userRole)} TO <user login>;`)
      ctx.out.line(`producers need the tenant secret: PGQUEUE_TENANT_SECRET=${result.tenantSecret ?? '(none yet)'}`)
    })
    return EXIT.ok
  }

  const logins = {
    admin: validateRoleName(flags.adminLogin, '--admin-login'),
    worker: validateRoleName(flags.workerLogin, '--worker-login'),
    user: validateRoleName(flags.userLogin, '--user-login'),
  }
  const password = () => randomBytes(18).toString('base64url')
  const passwords = { admin: password(), worker: password(), user: password() }
  const client = new pg.Client({ connectionString: ctx.url, application_name: 'pgqueue-cli-init', connectionTimeoutMillis: 10_000 })
  client.on('error', () => {})
  await client.connect()
  let database: string
  try {
    const { rows: who } = await client.query<{ db: string; can: boolean }>(
      `select current_database() as db, (rolsuper or rolcreaterole) as can from pg_roles where rolname = current_user`,
    )
    database = who[0]!.db
    if (!who[0]!.can) throw new CliError('--create-logins needs a superuser or a login with CREATEROLE; connect as one, or create the logins yourself and run init without it', EXIT.setup)
    const { rows: existing } = await client.query<{ rolname: string }>('select rolname from pg_roles where rolname = any($1)', [Object.values(logins)])
    if (existing.length > 0 && !flags.resetPasswords) {
      throw new CliError(`login ${existing.map((r) => r.rolname).join(', ')} exists already: pass --reset-passwords to give it a new password, or pick other names (--admin-login, --worker-login, --user-login)`, EXIT.usage)
    }
    const exists = new Set(existing.map((r) => r.rolname))
    await client.query('begin')
    for (const group of [workerRole, userRole]) {
      const { rowCount } = await client.query('select 1 from pg_roles where rolname = $1', [group])
      if (!rowCount) await client.query(`create role ${quoteIdent(group)} nologin`)
    }
    for (const kind of ['admin', 'worker', 'user'] as const) {
      await client.query(`${exists.has(logins[kind]) ? 'alter' : 'create'} role ${quoteIdent(logins[kind])} login password ${quoteLiteral(passwords[kind])}`)
    }
    await client.query(`grant ${quoteIdent(workerRole)} to ${quoteIdent(logins.worker)}`)
    await client.query(`grant ${quoteIdent(userRole)} to ${quoteIdent(logins.user)}`)
    // The admin login creates and owns the schema; the group roles exist, so it needs no CREATEROLE.
    await client.query(`grant create, connect on database ${quoteIdent(database)} to ${quoteIdent(logins.admin)}`)
    await client.query('commit')
  } catch (err) {
    await client.query('rollback').catch(() => {})
    throw err
  } finally {
    await client.end().catch(() => {})
  }

  const urls = {
    admin: withLogin(ctx.url, logins.admin, passwords.admin),
    worker: withLogin(ctx.url, logins.worker, passwords.worker),
    user: withLogin(ctx.url, logins.user, passwords.user),
  }
  const result = await migrate(urls.admin, { ...ctx.names, createRoles: false })
  const out = { schema: result.schema, version: result.version, applied: result.applied, workerRole, userRole, logins, urls, tenantSecret: result.tenantSecret }
  ctx.out.result(out, () => {
    ctx.out.line(`schema ${result.schema} at version ${result.version}, owned by ${logins.admin}`)
    ctx.out.line('')
    ctx.out.line('Use these URLs (they hold passwords: keep them in your secret store):')
    ctx.out.line(`  admin  (pgqueue migrate, pgqueue maintenance, Maintenance):    ${urls.admin}`)
    ctx.out.line(`  worker (Worker, Scheduler, ScheduleRunner, global Stats):      ${urls.worker}`)
    ctx.out.line(`  user   (producers in your API: push, schedules, tenant Stats): ${urls.user}`)
    ctx.out.line(`  tenant secret for producers: PGQUEUE_TENANT_SECRET=${result.tenantSecret ?? '(none)'}`)
  })
  return EXIT.ok
}

function withLogin(url: string, user: string, password: string): string {
  const u = new URL(url)
  u.username = encodeURIComponent(user)
  u.password = encodeURIComponent(password)
  return u.toString()
}
