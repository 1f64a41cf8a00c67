import type { TestProject } from 'vitest/node'
import { startTestPostgres, type StartedPostgres } from './embedded.js'

let started: StartedPostgres | undefined
// Each project inherits this setup; the database is started once and stopped after the last project.
let users = 0

/** Vitest global setup: one PostgreSQL for the whole run, its URL handed to every test file. */
export async function setup(_project: TestProject): Promise<void> {
  users += 1
  if (!started) {
    // PostgreSQL's own log only on request: it is long and rarely useful.
    const log = process.env.PGQUEUE_TEST_PG_LOG === '1' ? (line: string) => process.stderr.write(`[pg] ${line}\n`) : () => {}
    started = await startTestPostgres(log)
    process.env.PGQUEUE_TEST_RESOLVED_URL = started.url
    process.stderr.write(`[pgqueue tests] PostgreSQL from ${started.source}\n`)
  }
}

export async function teardown(): Promise<void> {
  users -= 1
  if (users > 0) return
  await started?.stop()
  started = undefined
}
