import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { startEmbeddedPostgres, type StartedPostgres } from '@pgqueue/testing'

/** The three example logins of the README (section Roles), each a member of the group role it needs. */
export interface DemoDatabase {
  /** Where the database came from: 'embedded' (started and removed by the demo) or 'env' (DATABASE_URL). */
  source: 'embedded' | 'env'
  /** The URL the demo was given or started (a superuser, or at least a CREATEROLE owner). */
  superUrl: string
  /** pgqueue_admin: owns the schema, runs initialize() and Maintenance. */
  adminUrl: string
  /** pgqueue_worker_login: member of queue_worker, sees every tenant (Worker, Scheduler, ScheduleRunner, Stats). */
  workerUrl: string
  /** pgqueue_app: member of queue_user, sees one tenant at a time under row-level security. */
  userUrl: string
  /** Stops the embedded server and removes its data folder. On DATABASE_URL: drops the roles this run
   *  created, with what they own (the schema, when this run's admin login made it), unless `keep`. */
  stop(options?: { keep?: boolean }): Promise<string[]>
}

export interface DemoRoleNames {
  admin: string
  worker: string
  user: string
  workerGroup: string
  userGroup: string
}

export const DEFAULT_ROLES: DemoRoleNames = {
  admin: 'pgqueue_admin',
  worker: 'pgqueue_worker_login',
  user: 'pgqueue_app',
  workerGroup: 'queue_worker',
  userGroup: 'queue_user',
}

function withLogin(url: string, user: string, password: string): string {
  const u = new URL(url)
  u.username = user
  u.password = password
  return u.toString()
}

/**
 * Starts an embedded PostgreSQL 18 (data in a temporary folder, a free port) unless DATABASE_URL is
 * given, then creates the roles of the README's example:
 *
 *   create role queue_worker nologin;  create role queue_user nologin;
 *   create user pgqueue_admin  ...;  grant create on database ... to pgqueue_admin;   -- owns the schema
 *   create user pgqueue_worker_login ... in role queue_worker;
 *   create user pgqueue_app   ... in role queue_user;
 *
 * Existing roles are kept (their passwords are reset, so a rerun against the same database works);
 * roles this run created are dropped again by stop() on a server the demo did not start.
 */
export async function openDemoDatabase(options: { databaseUrl?: string; log?: (line: string) => void; roles?: DemoRoleNames } = {}): Promise<DemoDatabase> {
  const roles = options.roles ?? DEFAULT_ROLES
  let started: StartedPostgres | undefined
  let superUrl: string
  if (options.databaseUrl) {
    superUrl = options.databaseUrl
  } else {
    started = await startEmbeddedPostgres({ log: options.log })
    superUrl = started.url
  }
  const password = randomBytes(9).toString('base64url')
  const client = new pg.Client({ connectionString: superUrl, application_name: 'pgqueue-demo-setup' })
  let created: string[] = []
  try {
    await client.connect()
    created = await ensureRoles(client, roles, password)
  } catch (err) {
    await client.end().catch(() => {})
    await started?.stop()
    throw err
  }
  await client.end()
  return {
    source: started ? 'embedded' : 'env',
    superUrl,
    adminUrl: withLogin(superUrl, roles.admin, password),
    workerUrl: withLogin(superUrl, roles.worker, password),
    userUrl: withLogin(superUrl, roles.user, password),
    stop: async ({ keep = false } = {}) => {
      if (started) {
        await started.stop()
        return []
      }
      if (keep || created.length === 0) return []
      return dropRoles(superUrl, created)
    },
  }
}

/** Drops `names` (logins first, then groups) and what they own; returns the names dropped. */
async function dropRoles(superUrl: string, names: string[]): Promise<string[]> {
  const client = new pg.Client({ connectionString: superUrl, application_name: 'pgqueue-demo-cleanup' })
  await client.connect()
  try {
    // Sessions of the demo's own pools may still be closing.
    await client.query('select pg_terminate_backend(pid) from pg_stat_activity where usename = any($1) and pid <> pg_backend_pid()', [names])
    for (const name of names) await client.query(`drop owned by ${client.escapeIdentifier(name)} cascade`)
    for (const name of names) await client.query(`drop role ${client.escapeIdentifier(name)}`)
    return names
  } finally {
    await client.end()
  }
}

/** Creates or updates the roles; returns those it created, logins first. */
async function ensureRoles(client: pg.Client, roles: DemoRoleNames, password: string): Promise<string[]> {
  const created: string[] = []
  const ident = (name: string) => client.escapeIdentifier(name)
  const literal = (text: string) => client.escapeLiteral(text)
  const exists = async (name: string) => ((await client.query('select 1 from pg_roles where rolname = $1', [name])).rowCount ?? 0) > 0
  for (const group of [roles.workerGroup, roles.userGroup]) {
    if (!(await exists(group))) {
      await client.query(`create role ${ident(group)} nologin`)
      created.push(group)
    }
  }
  const logins: Array<[string, string]> = [
    [roles.admin, ''],
    [roles.worker, ''],
    [roles.user, ''],
  ]
  for (const [login, extra] of logins) {
    const verb = (await exists(login)) ? 'alter' : 'create'
    await client.query(`${verb} role ${ident(login)} login ${extra} password ${literal(password)}`)
    if (verb === 'create') created.unshift(login)
  }
  await client.query(`grant ${ident(roles.workerGroup)} to ${ident(roles.worker)}`)
  await client.query(`grant ${ident(roles.userGroup)} to ${ident(roles.user)}`)
  // The admin creates the pgqueue schema in this database; the group roles exist already, so it needs
  // no CREATEROLE (initialize() grants table privileges to them, which an owner may always do).
  const { rows } = await client.query<{ db: string }>('select current_database() as db')
  await client.query(`grant create, connect on database ${ident(rows[0]!.db)} to ${ident(roles.admin)}`)
  return created
}

/**
 * Runs `cleanup` once on normal exit, Ctrl-C (SIGINT) or SIGTERM, then exits with `code`. A second
 * Ctrl-C during cleanup exits at once.
 */
export function onShutdown(cleanup: () => Promise<void>): { run(code: number): Promise<never> } {
  let running: Promise<void> | undefined
  const run = async (code: number): Promise<never> => {
    running ??= cleanup().catch((err) => {
      process.stderr.write(`cleanup failed: ${(err as Error).message}\n`)
    })
    await running
    process.exit(code)
  }
  let signals = 0
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1
    if (signals > 1) process.exit(130)
    process.stderr.write(`\n${signal}: stopping the demo and removing its database...\n`)
    void run(signal === 'SIGINT' ? 130 : 143)
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  return { run }
}
