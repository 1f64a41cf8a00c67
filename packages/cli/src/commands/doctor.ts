import type { Command } from '@commander-js/extra-typings'
import pg from 'pg'
import { resolveSchemaOptions } from '@pgqueue/core/internal'
import { action } from '../action.js'
import type { CommandContext } from '../context.js'
import { attentionCode } from '../output.js'
import {
  backendRead,
  defaultPartitionHasRows,
  horizonHoldersRead,
  ownerOnlyTablesRead,
  rolesRead,
  sessionsHoldingVacuum,
  tableStatsRead,
  tenantTablesRead,
} from '../queries/doctor.js'
import { readStatus } from './status.js'

/** One finding: what was checked, how it stands, and what to do when it is not ok. */
export interface Finding {
  check: string
  level: 'ok' | 'warn' | 'error'
  message: string
  fix?: string
}

/** Dead tuples past this count and ratio are worth a look. */
const DEAD_TUPLES = 10_000
const DEAD_RATIO = 0.2
/** A transaction open this long holds back VACUUM on a busy queue. */
const LONG_TRANSACTION_S = 300

/** `pgqueue doctor`: checks roles, grants, RLS, partitions, dead tuples, VACUUM holders and the pooler. */
export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description('check roles and grants, RLS on every tenant table and partition, partitions ahead, dead tuples, sessions holding back VACUUM and the pooler; say what to do about each finding (exit 5 when any)')
    .action(action(async (ctx, _flags: object) => doctor(ctx)))
}

async function doctor(ctx: CommandContext): Promise<number> {
  const names = resolveSchemaOptions(ctx.names)
  const findings: Finding[] = []
  const add = (f: Finding) => findings.push(f)
  const db = ctx.pool

  const status = await readStatus(ctx)
  if (!status.installed) {
    add({ check: 'schema', level: 'error', message: `pgqueue is not installed in schema ${names.schema}`, fix: 'run pgqueue init (or pgqueue migrate) with the admin URL' })
  } else if (status.pendingMigrations.length > 0) {
    add({ check: 'schema', level: 'warn', message: `version ${status.version}, ${status.pendingMigrations.length} migration(s) pending`, fix: 'run pgqueue migrate with the admin URL' })
  } else add({ check: 'schema', level: 'ok', message: `version ${status.version} (current)` })

  // Roles.
  const roles = await rolesRead(db, names)
  for (const r of roles.roles) {
    if (!r.exists) add({ check: 'roles', level: 'error', message: `group role ${r.name} does not exist`, fix: `run pgqueue init, or CREATE ROLE ${r.name} NOLOGIN as a superuser` })
    else {
      if (r.canLogin) add({ check: 'roles', level: 'warn', message: `group role ${r.name} can log in`, fix: `ALTER ROLE ${r.name} NOLOGIN, and GRANT ${r.name} TO a login of its own` })
      if (r.superuser || r.bypassRls) add({ check: 'roles', level: 'error', message: `group role ${r.name} is ${r.superuser ? 'a superuser' : 'BYPASSRLS'}: row-level security does not apply to its members`, fix: `ALTER ROLE ${r.name} NOSUPERUSER NOBYPASSRLS` })
      if (r.members.length === 0) add({ check: 'roles', level: 'warn', message: `no login is a member of ${r.name}`, fix: `GRANT ${r.name} TO <login> (or pgqueue init --create-logins)` })
    }
  }
  if (roles.nested) add({ check: 'roles', level: 'error', message: `${names.workerRole} and ${names.userRole} are members of one another: a user would see every tenant`, fix: `REVOKE the membership between ${names.workerRole} and ${names.userRole}` })
  if (roles.loginsInBoth.length > 0) add({ check: 'roles', level: 'error', message: `login(s) ${roles.loginsInBoth.join(', ')} are members of both group roles: as users they see every tenant`, fix: 'give producers and workers separate logins; REVOKE one of the two roles' })
  if (!findings.some((f) => f.check === 'roles')) add({ check: 'roles', level: 'ok', message: `${names.workerRole} (${roles.roles[0]?.members.length ?? 0} login(s)), ${names.userRole} (${roles.roles[1]?.members.length ?? 0} login(s))` })

  if (status.installed) {
    // RLS and grants on tenant tables: parents need RLS with policies; partitions must be out of the roles' reach.
    const tables = await tenantTablesRead(db, names)
    let rlsOk = true
    for (const t of tables) {
      if (!t.isPartition && (!t.rlsEnabled || t.policies === 0)) {
        rlsOk = false
        add({ check: 'rls', level: 'error', message: `${names.schema}.${t.name} holds tenant rows but ${t.rlsEnabled ? 'has no policy' : 'has row-level security off'}`, fix: 'run pgqueue migrate as the schema owner (it restores policies); never ALTER TABLE ... DISABLE ROW LEVEL SECURITY' })
      }
      if (t.isPartition && !t.rlsEnabled && t.userPrivileges.length + t.workerPrivileges.length > 0) {
        rlsOk = false
        add({
          check: 'rls',
          level: 'error',
          message: `partition ${names.schema}.${t.name} grants ${[...new Set([...t.userPrivileges, ...t.workerPrivileges])].join(', ')} to a group role: policies act only through the parent, so that bypasses them`,
          fix: `REVOKE ALL ON ${names.schema}.${t.name} FROM ${names.workerRole}, ${names.userRole}, PUBLIC; check ALTER DEFAULT PRIVILEGES of the schema owner`,
        })
      }
    }
    if (rlsOk) add({ check: 'rls', level: 'ok', message: `${tables.filter((t) => !t.isPartition).length} tenant tables with policies, ${tables.filter((t) => t.isPartition).length} partitions out of the roles' reach` })
    const exposed = await ownerOnlyTablesRead(db, names)
    for (const e of exposed) add({ check: 'grants', level: 'error', message: `${e.role} has privileges on the owner-only table ${names.schema}.${e.table}`, fix: `REVOKE ALL ON ${names.schema}.${e.table} FROM ${e.role}` })
    if (exposed.length === 0) add({ check: 'grants', level: 'ok', message: 'owner-only tables (migrations, tenant_secret, locks) are private' })

    // Partitions.
    const p = status.partitions
    if (p && (!p.current || p.ahead === 0)) add({ check: 'partitions', level: 'warn', message: p.current ? 'no history partition ahead of the current one' : 'no history partition covers now: finished jobs land in the default partition', fix: 'run Maintenance (pgqueue maintenance, or Maintenance.runOnce(adminUrl) from cron every hour)' })
    else if (p) add({ check: 'partitions', level: 'ok', message: `${p.ahead} history partition(s) ahead` })
    if ((await defaultPartitionHasRows(db, names).catch(() => null)) === true) {
      add({ check: 'partitions', level: 'warn', message: 'the default history partition holds rows (retention cannot drop them cheaply)', fix: 'run Maintenance: its partitions task moves them into partitions of their own' })
    }
  }

  // Dead tuples.
  const stats = await tableStatsRead(db, names)
  const bloated = stats.filter((s) => s.deadTuples > DEAD_TUPLES && s.deadTuples / Math.max(1, s.liveTuples + s.deadTuples) > DEAD_RATIO)
  for (const s of bloated) {
    add({
      check: 'dead tuples',
      level: 'warn',
      message: `${names.schema}.${s.name}: ${s.deadTuples} dead tuples (${Math.round((100 * s.deadTuples) / (s.liveTuples + s.deadTuples))} %), ${Math.round(s.totalBytes / 1_048_576)} MiB, last vacuum ${s.lastAutovacuum ? s.lastAutovacuum.toISOString() : 'never'}`,
      fix: 'look for sessions holding back VACUUM (below); run Maintenance (it vacuums the live table); consider a lower autovacuum_vacuum_scale_factor on this table',
    })
  }
  if (bloated.length === 0) add({ check: 'dead tuples', level: 'ok', message: `${stats.length} tables, none over ${DEAD_TUPLES} dead tuples and ${DEAD_RATIO * 100} %` })

  // Sessions and other holders of the xmin horizon.
  const sessions = await sessionsHoldingVacuum(db, { minAgeS: LONG_TRANSACTION_S })
  for (const s of sessions) {
    add({
      check: 'vacuum horizon',
      level: 'warn',
      message: `session ${s.pid} (${s.user ?? '?'}, ${s.application || 'no application_name'}) ${s.state === 'idle in transaction' ? 'idle in transaction' : 'in a transaction'} for ${s.transactionAgeS} s: VACUUM cannot remove rows dead since it began`,
      fix: `end it (SELECT pg_terminate_backend(${s.pid})) and fix its client; set idle_in_transaction_session_timeout`,
    })
  }
  const horizon = await horizonHoldersRead(db)
  if (horizon.preparedOld > 0) add({ check: 'vacuum horizon', level: 'warn', message: `${horizon.preparedOld} prepared transaction(s) older than 5 minutes`, fix: 'COMMIT PREPARED or ROLLBACK PREPARED them (see pg_prepared_xacts)' })
  for (const slot of horizon.slotsHolding) add({ check: 'vacuum horizon', level: 'warn', message: `inactive replication slot ${slot} holds back the xmin horizon`, fix: `SELECT pg_drop_replication_slot('${slot}') if nothing consumes it` })
  if (sessions.length === 0 && horizon.preparedOld === 0 && horizon.slotsHolding.length === 0) {
    add({ check: 'vacuum horizon', level: 'ok', message: `no transaction open for more than ${LONG_TRANSACTION_S} s (sessions of other logins are visible only to superusers and pg_read_all_stats)` })
  }

  add(await poolerFinding(ctx.url))

  const attention = findings.some((f) => f.level !== 'ok')
  ctx.out.result({ schema: names.schema, findings, attention }, () => {
    const o = ctx.out
    for (const f of findings) {
      o.line(`${o.level(f.level, f.level.padEnd(5))} ${f.check}: ${f.message}`)
      if (f.fix && f.level !== 'ok') o.line(`      fix: ${f.fix}`)
    }
  })
  return attentionCode(attention)
}

/**
 * Guesses what sits between the CLI and PostgreSQL: three statements on one client connection served by
 * different backends means transaction (or statement) pooling; a server port other than the URL's
 * means a proxy, such as PgBouncer in session mode; neither means a direct connection.
 */
async function poolerFinding(url: string): Promise<Finding> {
  const client = new pg.Client({ connectionString: url, application_name: 'pgqueue-cli-doctor', connectionTimeoutMillis: 10_000 })
  client.on('error', () => {})
  await client.connect()
  try {
    const seen = [await backendRead(client), await backendRead(client), await backendRead(client)]
    const urlPort = Number(new URL(url).port || 5432)
    if (new Set(seen.map((s) => s.pid)).size > 1) {
      return {
        check: 'pooler',
        level: 'warn',
        message: 'transaction pooling (PgBouncer or alike): each transaction may get another server connection',
        fix: 'pgqueue works there, but LISTEN does not: give Workers and Schedulers listenUrl with a direct (or session-mode) URL, or listen: false to poll',
      }
    }
    const port = seen[0]!.port
    if (port !== null && port !== urlPort) return { check: 'pooler', level: 'ok', message: `a proxy in session mode (URL port ${urlPort}, server port ${port}): LISTEN and every feature work` }
    return { check: 'pooler', level: 'ok', message: 'direct connection (no pooler seen)' }
  } finally {
    await client.end().catch(() => {})
  }
}
