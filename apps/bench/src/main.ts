/**
 * pgqueue against pg-boss and graphile-worker, and against hand-written SQL (the floor), on one
 * PostgreSQL in one run. Usage (from the repository root: `pnpm bench -- [flags]`):
 *   --quick            small counts, 1 repetition (the CI test runs this)
 *   --full             also the 200,000-backlog fairness case and the long-transaction case
 *   --reps N           repetitions (default 3; 1 with --quick)
 *   --only a,b         case ids and/or library names (pgqueue, pgqueue-node20, pg-boss, graphile-worker, floor)
 *   --database-url U   superuser URL; default DATABASE_URL, else PGQUEUE_TEST_DATABASE_URL, else an embedded PostgreSQL 18
 *   --out FILE         JSON output (default apps/bench/results/latest.json; a .md beside it)
 */
import { parseArgs } from 'node:util'
import { defaultOut, runBench } from './bench.js'
import { renderText } from './report.js'
import { abortActive } from './runner.js'

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: process.argv.slice(2).filter((a) => a !== '--'),
    options: {
      quick: { type: 'boolean', default: false },
      full: { type: 'boolean', default: false },
      reps: { type: 'string' },
      only: { type: 'string' },
      'database-url': { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help) {
    process.stdout.write('usage: pnpm bench -- [--quick | --full] [--reps N] [--only case,lib] [--database-url URL] [--out FILE]\n')
    return 0
  }
  if (values.quick && values.full) throw new Error('--quick and --full exclude each other')
  const mode = values.quick ? 'quick' : values.full ? 'full' : 'normal'
  const reps = values.reps ? Number(values.reps) : mode === 'quick' ? 1 : 3
  if (!Number.isInteger(reps) || reps < 1) throw new Error('--reps must be a positive integer')

  let url = values['database-url'] ?? process.env.DATABASE_URL ?? process.env.PGQUEUE_TEST_DATABASE_URL
  let source = values['database-url'] ? '--database-url' : process.env.DATABASE_URL ? 'DATABASE_URL' : 'PGQUEUE_TEST_DATABASE_URL'
  let stop = async (): Promise<void> => {}
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      process.stderr.write(`\n${signal}: stopping the running child and dropping its schema (results so far are in the JSON)\n`)
      void abortActive()
        .then(() => stop())
        .finally(() => process.exit(130))
    })
  }
  if (!url) {
    process.stderr.write('no DATABASE_URL: starting an embedded PostgreSQL...\n')
    const { startEmbeddedPostgres } = await import('@pgqueue/testing')
    const started = await startEmbeddedPostgres()
    url = started.url
    source = 'embedded PostgreSQL'
    stop = () => started.stop()
  }
  try {
    const out = values.out ?? defaultOut()
    const report = await runBench({
      mode,
      reps,
      databaseUrl: url,
      databaseSource: source,
      only: values.only ? values.only.split(',').map((s) => s.trim()).filter(Boolean) : [],
      out,
      log: (line) => process.stderr.write(`${line}\n`),
    })
    process.stdout.write(renderText(report))
    process.stderr.write(`\nwritten: ${out}\n`)
    return 0
  } finally {
    await stop()
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`${(err as Error).stack ?? err}\n`)
    process.exit(1)
  },
)
