import { Command, CommanderError } from '@commander-js/extra-typings'
import { registerDashboard } from './commands/dashboard.js'
import { registerDoctor } from './commands/doctor.js'
import { registerFlows } from './commands/flows.js'
import { registerInit } from './commands/init.js'
import { registerJobs } from './commands/jobs.js'
import { registerMigrate } from './commands/migrate.js'
import { registerPush } from './commands/push.js'
import { registerQueues } from './commands/queues.js'
import { registerRun } from './commands/run.js'
import { registerSchedules } from './commands/schedules.js'
import { registerStatus } from './commands/status.js'
import { EXIT, toCliError } from './errors.js'
import pkg from '../package.json' with { type: 'json' }


/** The `pgqueue` command with every subcommand; global flags are accepted before or after the subcommand. */
export function buildProgram(): Command {
  const program = new Command('pgqueue')
    .description('operate a pgqueue installation: set it up, check it, look at and move jobs, run its components')
    .version(pkg.version)
    .option('--url <url>', 'database URL (else PGQUEUE_DATABASE_URL, DATABASE_URL, or databaseUrl in the config file)')
    .option('--schema <name>', 'pgqueue schema (else PGQUEUE_SCHEMA; default pgqueue)')
    .option('--worker-role <name>', 'worker group role (else PGQUEUE_WORKER_ROLE; default queue_worker)')
    .option('--user-role <name>', 'user group role (else PGQUEUE_USER_ROLE; default queue_user)')
    .option('--config <path>', 'config file (else PGQUEUE_CONFIG, or pgqueue.config.{mjs,js,json} here)')
    .option('--json', 'print results as JSON on stdout')
    .option('--verbose', 'component warnings, and stack traces of errors, on stderr')
    .exitOverride()
  // Subcommands take the settings above (copied when created with .command()).
  const base = program as unknown as Command
  registerInit(base)
  registerMigrate(base)
  registerStatus(base)
  registerDoctor(base)
  registerQueues(base)
  registerJobs(base)
  registerSchedules(base)
  registerFlows(base)
  registerPush(base)
  registerRun(base)
  registerDashboard(base)
  return base
}

/**
 * Runs the command line and returns the exit code (README: Exit codes). Errors become one line on
 * stderr, `pgqueue: <what went wrong>`, with the stack only under --verbose. With --json, the error is
 * also one JSON document on stdout, `{"error":{"message","exitCode"}}`, so a script reading stdout
 * always gets a document.
 */
export async function run(argv: readonly string[] = process.argv): Promise<number> {
  const verbose = argv.includes('--verbose')
  const json = argv.includes('--json')
  const program = buildProgram()
  try {
    await program.parseAsync([...argv])
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok
  } catch (err) {
    // Commander has printed its own one-line message (unknown option, missing argument...).
    if (err instanceof CommanderError) {
      const exitCode = err.exitCode === 0 ? EXIT.ok : EXIT.usage
      if (json && exitCode !== EXIT.ok) writeJsonError(err.message.replace(/^error: /, ''), exitCode)
      return exitCode
    }
    const e = toCliError(err)
    process.stderr.write(`pgqueue: ${e.message}\n`)
    if (json) writeJsonError(e.message, e.exitCode)
    if (verbose) {
      const cause = e.cause instanceof Error ? e.cause : e
      process.stderr.write(`${cause.stack ?? ''}\n`)
    }
    return e.exitCode
  }
}

function writeJsonError(message: string, exitCode: number): void {
  process.stdout.write(`${JSON.stringify({ error: { message, exitCode } })}\n`)
}
