import type { Command } from '@commander-js/extra-typings'
import { LATEST_SCHEMA_VERSION, listHistoryPartitions, migrations, resolveSchemaOptions } from '@pgqueue/core/internal'
import { action } from '../action.js'
import type { CommandContext } from '../context.js'
import { attentionCode } from '../output.js'
import { installationRead } from '../queries/installation.js'
import { nodesCountByKind, type NodesByKind } from '../queries/nodes.js'

/** A node that beat within this long is alive (components beat every 10 s or so). */
export const NODE_ALIVE_MS = 60_000

/** What `pgqueue status` reports. */
export interface StatusReport {
  schema: string
  installed: boolean
  version: number
  latestVersion: number
  pendingMigrations: { version: number; name: string }[]
  loginRole: string | null
  partitions: { current: boolean; ahead: number; newestEndsAt: Date | null } | null
  nodes: NodesByKind[] | null
  /** What needs attention, one sentence each with what to do; empty when all is well. */
  attention: string[]
}

/** `pgqueue status`: version, pending migrations, partitions ahead, nodes alive; exit 5 when something needs attention. */
export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('schema version, pending migrations, history partitions ahead and live nodes; exits 5 when something needs attention')
    .action(action(async (ctx, _flags: object) => status(ctx)))
}

/** Reads the status with the command's login (worker role or owner sees nodes; any login the rest). */
export async function readStatus(ctx: CommandContext): Promise<StatusReport> {
  const { schema } = resolveSchemaOptions(ctx.names)
  const installed = await installationRead(ctx.pool, schema)
  const pendingMigrations = migrations.filter((m) => m.version > installed.version).map((m) => ({ version: m.version, name: m.name }))
  const attention: string[] = []
  const report: StatusReport = {
    schema,
    installed: installed.schemaExists && installed.version > 0,
    version: installed.version,
    latestVersion: LATEST_SCHEMA_VERSION,
    pendingMigrations,
    loginRole: installed.loginRole ?? null,
    partitions: null,
    nodes: null,
    attention,
  }
  if (!report.installed) {
    attention.push(`pgqueue is not installed in schema ${schema}: run pgqueue init (or pgqueue migrate) with the admin URL`)
    return report
  }
  if (pendingMigrations.length > 0) attention.push(`${pendingMigrations.length} migration(s) pending: run pgqueue migrate with the admin URL`)
  if (installed.version > LATEST_SCHEMA_VERSION) attention.push(`schema is at version ${installed.version}, newer than this CLI knows (${LATEST_SCHEMA_VERSION}): upgrade @pgqueue/cli`)

  const now = Date.now()
  const parts = await listHistoryPartitions(ctx.connection.db, ctx.names)
  const current = parts.some((p) => p.from.getTime() <= now && now < p.to.getTime())
  const ahead = parts.filter((p) => p.from.getTime() > now).length
  report.partitions = { current, ahead, newestEndsAt: parts.at(-1)?.to ?? null }
  if (!current || ahead === 0) attention.push(`history partitions: ${current ? 'none ahead of the current one' : 'none for now'}: run Maintenance (pgqueue maintenance, or Maintenance.runOnce(adminUrl) from cron)`)

  try {
    report.nodes = await nodesCountByKind(ctx.pool, { schema, aliveMs: NODE_ALIVE_MS })
  } catch (err) {
    if ((err as { code?: string }).code !== '42501') throw err
    // The user role cannot read nodes: report the rest.
  }
  if (report.nodes !== null && !report.nodes.some((n) => n.kind === 'scheduler' && n.alive > 0)) {
    attention.push('no Scheduler is alive: delayed jobs, retries, held jobs and expired leases wait; run pgqueue scheduler (or Scheduler.create(workerUrl).start())')
  }
  return report
}

async function status(ctx: CommandContext): Promise<number> {
  const r = await readStatus(ctx)
  ctx.out.result(r, () => {
    const o = ctx.out
    o.line(`schema            ${r.schema}${r.loginRole ? ` (this login: ${r.loginRole})` : ''}`)
    o.line(`version           ${r.version} of ${r.latestVersion}${r.pendingMigrations.length > 0 ? `, pending: ${r.pendingMigrations.map((m) => m.version).join(', ')}` : ''}`)
    if (r.partitions) o.line(`partitions ahead  ${r.partitions.ahead}${r.partitions.current ? '' : ' (none covers now)'}${r.partitions.newestEndsAt ? `, up to ${r.partitions.newestEndsAt.toISOString()}` : ''}`)
    if (r.nodes) o.line(`nodes alive       ${r.nodes.length === 0 ? 'none' : r.nodes.map((n) => `${n.kind} ${n.alive}${n.stale > 0 ? ` (+${n.stale} stale)` : ''}`).join(', ')}`)
    else if (r.installed) o.line('nodes alive       (not readable by this login)')
    if (r.attention.length === 0) o.line(o.level('ok', 'ok'))
    for (const a of r.attention) o.line(`${o.level('warn', 'attention')}: ${a}`)
  })
  return attentionCode(r.attention.length > 0)
}
