import type { Command } from '@commander-js/extra-typings'
import { LATEST_SCHEMA_VERSION, migrate, migrations, renderMigration, resolveSchemaOptions } from '@pgqueue/core/internal'
import { action } from '../action.js'
import type { CommandContext } from '../context.js'
import { CliError, EXIT } from '../errors.js'
import { installationRead } from '../queries/installation.js'

/** `pgqueue migrate`: apply pending migrations (as the schema owner), or list them with --dry-run. */
export function registerMigrate(program: Command): void {
  program
    .command('migrate')
    .description('bring the schema up to date (run as the schema owner)')
    .option('--dry-run', 'list pending migrations, change nothing')
    .option('--show-sql', 'print the SQL of each pending migration')
    .action(action(async (ctx, flags: { dryRun?: boolean; showSql?: boolean }) => run(ctx, flags)))
}

async function run(ctx: CommandContext, flags: { dryRun?: boolean; showSql?: boolean }): Promise<number> {
  const names = resolveSchemaOptions(ctx.names)
  const installed = await installationRead(ctx.pool, names.schema)
  if (installed.version > LATEST_SCHEMA_VERSION) {
    throw new CliError(`schema ${names.schema} is at version ${installed.version}, newer than this pgqueue knows (${LATEST_SCHEMA_VERSION}): upgrade @pgqueue/cli`, EXIT.setup)
  }
  const pending = migrations
    .filter((m) => m.version > installed.version)
    .sort((a, b) => a.version - b.version)
    .map((m) => ({ version: m.version, name: m.name, ...(flags.showSql ? { sql: renderMigration(m.sql, names) } : {}) }))
  const printPending = () => {
    for (const m of pending) {
      ctx.out.line(`${String(m.version).padStart(4, '0')} ${m.name}`)
      if (m.sql !== undefined) ctx.out.line(`${m.sql.trim()}\n`)
    }
  }
  if (flags.dryRun) {
    ctx.out.result({ schema: names.schema, version: installed.version, pending, dryRun: true }, () => {
      ctx.out.line(`schema ${names.schema} at version ${installed.version}; ${pending.length === 0 ? 'nothing pending' : `${pending.length} pending:`}`)
      printPending()
    })
    return EXIT.ok
  }
  if (flags.showSql && !ctx.out.json) printPending()
  const result = await migrate(ctx.pool, { ...ctx.names })
  ctx.out.result({ schema: result.schema, version: result.version, applied: result.applied, ...(flags.showSql ? { pending } : {}) }, () => {
    ctx.out.line(result.applied.length === 0 ? `schema ${result.schema} is current (version ${result.version})` : `schema ${result.schema} at version ${result.version} (applied ${result.applied.join(', ')})`)
  })
  return EXIT.ok
}
