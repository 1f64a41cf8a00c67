import { createHash } from 'node:crypto'
import type pg from 'pg'
import { connect, type Connectable } from './connect.js'
import { PgQueueMigrationError, PgQueueRoleSetupError, isInsufficientPrivilege } from './errors.js'
import { validateOptionalInt } from './validate.js'
import { migrations as allMigrations, type Migration } from './migrations/index.js'
import { jobsChannel } from './listener.js'
import { tenantSecretGet, tenantSecretSet } from './queries/tenant-secret.js'
import { tenantSecretFrom } from './tenant.js'
import { quoteIdent, quoteLiteral, resolveSchemaOptions, type ResolvedSchemaOptions, type SchemaOptions } from './options.js'

export interface MigrateOptions extends SchemaOptions {
  /** Create the NOLOGIN group roles when missing (needs CREATEROLE). Default true. */
  createRoles?: boolean
  /** Migrations to apply; tests use this to stage upgrades. Default: all of this build's. */
  migrations?: readonly Migration[]
  /**
   * The tenant secret to install (at least 32 characters), e.g. from your secret store; it replaces the
   * current one, so tokens signed with the old one stop working. Default PGQUEUE_TENANT_SECRET, else keep
   * the current one (migration 12 makes a random one). See docs/THREAT-MODEL.md.
   */
  tenantSecret?: string
  /**
   * How long each step waits for the lock on `<schema>.migrations` while another migrate() holds it,
   * before failing with PgQueueMigrationError. Default 60 s.
   */
  lockTimeoutMs?: number
}

export interface MigrateResult {
  schema: string
  /** Versions applied by this call (empty when the schema was already current). */
  applied: number[]
  /** Highest version recorded after this call. */
  version: number
  /**
   * The installation's tenant secret: give it to producers and tenant-scoped Stats (option tenantSecret
   * or PGQUEUE_TENANT_SECRET). Keep it out of logs; SQL on a user-role connection must never see it.
   */
  tenantSecret: string | undefined
}

/** The migration that creates the tenant secret. */
const TENANT_SECRET_VERSION = 12

/** Default of MigrateOptions.lockTimeoutMs. */
const DEFAULT_LOCK_TIMEOUT_MS = 60_000

/** sha256 of a migration's template text, so renaming the schema or roles does not change it. */
export function migrationChecksum(migration: Migration): string {
  return createHash('sha256').update(migration.sql).digest('hex')
}

/**
 * Substitutes :schema, :worker_role, :user_role (quoted identifiers), :schema_channel, :worker_role_name
 * and :user_role_name (string literals).
 */
export function renderMigration(sqlText: string, opts: ResolvedSchemaOptions): string {
  const names: Record<string, string> = {
    schema: quoteIdent(opts.schema),
    worker_role: quoteIdent(opts.workerRole),
    user_role: quoteIdent(opts.userRole),
  }
  return sqlText
    .replace(/(?<!:):schema_channel\b/g, quoteLiteral(jobsChannel(opts.schema)))
    .replace(/(?<!:):worker_role_name\b/g, quoteLiteral(opts.workerRole))
    .replace(/(?<!:):user_role_name\b/g, quoteLiteral(opts.userRole))
    .replace(/(?<!:):(schema|worker_role|user_role)\b/g, (_m, name: string) => names[name]!)
}

/**
 * Brings the schema up to date. Idempotent and safe to run from several processes at once: the schema
 * and its `migrations` table are created first (if missing; a concurrent creator is tolerated), then
 * every step runs in its own transaction holding `LOCK TABLE <schema>.migrations IN EXCLUSIVE MODE`
 * (so it also works behind PgBouncer in transaction mode). Only the schema's owner (or a superuser)
 * may take that lock: unlike an advisory lock, no other login can hold it to stall initialize().
 * Each migration is recorded with its checksum; a recorded migration whose checksum differs from this
 * build's, or one this build does not know, is an error. The worker and user roles must be two
 * different roles, neither a member of the other (PgQueueRoleSetupError otherwise).
 */
export async function migrate(target: Connectable, options: MigrateOptions = {}): Promise<MigrateResult> {
  const opts = resolveSchemaOptions(options)
  // Validated before anything is written.
  const wantedSecret = tenantSecretFrom(options.tenantSecret)
  const lockTimeoutMs = validateOptionalInt('lockTimeoutMs', options.lockTimeoutMs, DEFAULT_LOCK_TIMEOUT_MS, 1, 3_600_000)
  if (opts.workerRole === opts.userRole) {
    throw new PgQueueRoleSetupError(
      `workerRole and userRole are both ${opts.workerRole}: the worker role sees every tenant, so a user would too; give them two different roles`,
    )
  }
  const list = [...(options.migrations ?? allMigrations)].sort((a, b) => a.version - b.version)
  const conn = connect(target, { max: 1, applicationName: 'pgqueue-migrate' })
  const s = quoteIdent(opts.schema)
  const applied: number[] = []
  try {
    await ensureSchema(conn.pool, s)
    await inLockedTransaction(conn.pool, opts.schema, lockTimeoutMs, async (client) => {
      if (options.createRoles !== false) await ensureRoles(client, opts)
      else await checkRolesExist(client, opts)
      await checkRolesApart(client, opts)
    })

    for (const migration of list) {
      await inLockedTransaction(conn.pool, opts.schema, lockTimeoutMs, async (client) => {
        const recorded = await readRecorded(client, s)
        verifyRecorded(recorded, list)
        if (recorded.has(migration.version)) return
        try {
          await client.query(renderMigration(migration.sql, opts))
        } catch (err) {
          throw new PgQueueMigrationError(`migration ${migration.version} (${migration.name}) failed: ${(err as Error).message}`, migration.version, err)
        }
        await client.query(`insert into ${s}.migrations (version, name, checksum) values ($1, $2, $3)`, [
          migration.version,
          migration.name,
          migrationChecksum(migration),
        ])
        applied.push(migration.version)
      })
    }
    const recorded = await readRecorded(conn.pool, s)
    verifyRecorded(recorded, list)
    let tenantSecret: string | undefined
    if (recorded.has(TENANT_SECRET_VERSION)) {
      if (wantedSecret !== undefined) await tenantSecretSet(conn.pool, { schema: opts.schema, secret: wantedSecret })
      tenantSecret = await tenantSecretGet(conn.pool, { schema: opts.schema })
    }
    // Fresh tables need statistics, or the planner may sort the whole backlog to find the head of the queue.
    if (applied.length > 0) await conn.pool.query(`analyze ${s}.jobs`)
    return { schema: opts.schema, applied, version: Math.max(0, ...recorded.keys()), tenantSecret }
  } finally {
    await conn.close()
  }
}

/** SQLSTATEs of two sessions creating the same catalog entry at once (the loser's unique index check). */
const CONCURRENT_CREATE = new Set(['23505', '42P06', '42P07', '42710'])

/**
 * Creates the schema and its migrations table when missing, before any lock exists to take. Two first
 * installs at once may both find them missing; the one that loses the race retries and finds them.
 */
async function ensureSchema(pool: pg.Pool, s: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await inTransaction(pool, async (client) => {
        await client.query(`create schema if not exists ${s}`)
        await client.query(`create table if not exists ${s}.migrations (
          version integer primary key,
          name text not null,
          checksum text not null,
          applied_at timestamptz not null default now())`)
      })
      return
    } catch (err) {
      const code = (err as { code?: unknown }).code
      if (code === '42501') {
        const { rows } = await pool.query<{ login: string; db: string }>('select current_user as login, current_database() as db').catch(() => ({ rows: [] }))
        const login = rows[0]?.login ?? 'this login'
        const db = rows[0]?.db ?? 'this database'
        throw new PgQueueMigrationError(
          `initialize() cannot create schema ${s} as ${login}: run GRANT CREATE ON DATABASE ${quoteIdent(db)} TO ${quoteIdent(login)} as a superuser ` +
            `(or create the schema for it: CREATE SCHEMA ${s} AUTHORIZATION ${quoteIdent(login)}); initialize() must run as the schema owner`, undefined, err)
      }
      if (attempt >= 3 || typeof code !== 'string' || !CONCURRENT_CREATE.has(code)) throw err
    }
  }
}

async function inTransaction(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<void>): Promise<void> {
  const client = await pool.connect()
  try {
    await client.query('begin')
    await fn(client)
    await client.query('commit')
  } catch (err) {
    await client.query('rollback').catch(() => {})
    throw err
  } finally {
    client.release()
  }
}

/**
 * Runs fn in a transaction that first locks the migrations table. LOCK TABLE in EXCLUSIVE mode needs
 * UPDATE, DELETE or TRUNCATE on the table, which only its owner has; the wait is bounded by
 * lockTimeoutMs, and the session's own lock_timeout applies again to the migration's statements.
 */
async function inLockedTransaction(pool: pg.Pool, schema: string, lockTimeoutMs: number, fn: (client: pg.PoolClient) => Promise<void>): Promise<void> {
  await inTransaction(pool, async (client) => {
    const { rows } = await client.query<{ prev: string }>(`select current_setting('lock_timeout') as prev, set_config('lock_timeout', $1, true)`, [`${lockTimeoutMs}ms`])
    try {
      await client.query(`lock table ${quoteIdent(schema)}.migrations in exclusive mode`)
    } catch (err) {
      if ((err as { code?: unknown }).code !== '55P03') throw err
      throw new PgQueueMigrationError(
        `could not lock ${schema}.migrations within ${lockTimeoutMs} ms: another migrate() is still running (or a session of the schema owner holds a lock on that table); try again, or raise lockTimeoutMs`,
        undefined,
        err,
      )
    }
    await client.query(`select set_config('lock_timeout', $1, true)`, [rows[0]!.prev])
    await fn(client)
  })
}

async function readRecorded(client: pg.Pool | pg.PoolClient, s: string): Promise<Map<number, string>> {
  const { rows } = await client.query<{ version: number; checksum: string }>(`select version, checksum from ${s}.migrations order by version`)
  return new Map(rows.map((r) => [r.version, r.checksum]))
}

function verifyRecorded(recorded: Map<number, string>, list: readonly Migration[]): void {
  const known = new Map(list.map((m) => [m.version, m]))
  for (const [version, checksum] of recorded) {
    const m = known.get(version)
    if (!m) {
      throw new PgQueueMigrationError(`the database has migration ${version}, which this build of pgqueue does not know; upgrade pgqueue`, version)
    }
    if (migrationChecksum(m) !== checksum) {
      throw new PgQueueMigrationError(`migration ${version} (${m.name}) was applied with a different checksum; a released migration must never change`, version)
    }
  }
}

async function ensureRoles(client: pg.PoolClient, opts: ResolvedSchemaOptions): Promise<void> {
  for (const role of [opts.workerRole, opts.userRole]) {
    const { rowCount } = await client.query('select 1 from pg_roles where rolname = $1', [role])
    if (rowCount) continue
    try {
      await client.query('savepoint create_role')
      await client.query(`create role ${quoteIdent(role)} nologin`)
      await client.query('release savepoint create_role')
    } catch (err) {
      if (!isInsufficientPrivilege(err)) throw err
      throw new PgQueueRoleSetupError(
        `role ${role} does not exist and the connecting role may not create it; run: CREATE ROLE ${quoteIdent(role)} NOLOGIN`,
        err,
      )
    }
  }
}

/**
 * Refuses a worker role that is a member of the user role or the other way round (directly or through
 * other roles): the policies of both would then apply to one session, and the worker's sees every tenant.
 */
async function checkRolesApart(client: pg.PoolClient, opts: ResolvedSchemaOptions): Promise<void> {
  const { rows } = await client.query<{ w_in_u: boolean; u_in_w: boolean }>(
    `select pg_has_role($1::name, $2::name, 'member') as w_in_u, pg_has_role($2::name, $1::name, 'member') as u_in_w`,
    [opts.workerRole, opts.userRole],
  )
  const r = rows[0]!
  if (r.w_in_u || r.u_in_w) {
    const [member, group] = r.u_in_w ? [opts.userRole, opts.workerRole] : [opts.workerRole, opts.userRole]
    throw new PgQueueRoleSetupError(
      `role ${member} is a member of ${group} (or a superuser): a session of the user role would get the worker role's view of every tenant; ` +
        `run REVOKE ${quoteIdent(group)} FROM ${quoteIdent(member)} (or use two unrelated NOLOGIN roles) and initialize again`,
    )
  }
}

async function checkRolesExist(client: pg.PoolClient, opts: ResolvedSchemaOptions): Promise<void> {
  const { rows } = await client.query<{ rolname: string }>('select rolname from pg_roles where rolname = any($1)', [[opts.workerRole, opts.userRole]])
  const found = new Set(rows.map((r) => r.rolname))
  for (const role of [opts.workerRole, opts.userRole]) {
    if (!found.has(role)) throw new PgQueueRoleSetupError(`role ${role} does not exist; run: CREATE ROLE ${quoteIdent(role)} NOLOGIN`)
  }
}
