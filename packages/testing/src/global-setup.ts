import type { TestProject } from 'vitest/node'
import { startTestPostgres, type StartedPostgres } from './embedded.js'

// Every vitest project loads this file on its own, so the shared state lives on globalThis (one
// process): the database is started once for the whole run and stopped after the last project.
interface SharedState {
  started: Promise<StartedPostgres> | undefined
  users: number
}
const KEY = Symbol.for('pgqueue.testing.postgres')
const shared: SharedState = ((globalThis as Record<symbol, SharedState | undefined>)[KEY] ??= { started: undefined, users: 0 })

/** Vitest global setup: one PostgreSQL for the whole run, its URL handed to every test file. */
export async function setup(_project: TestProject): Promise<void> {
  shared.users += 1
  if (!shared.started) {
    // PostgreSQL's own log only on request: it is long and rarely useful.
    const log = process.env.PGQUEUE_TEST_PG_LOG === '1' ? (line: string) => process.stderr.write(`[pg] ${line}\n`) : () => {}
    shared.started = startTestPostgres(log)
    const pg = await shared.started
    process.stderr.write(`[pgqueue tests] PostgreSQL from ${pg.source}\n`)
  }
  process.env.PGQUEUE_TEST_RESOLVED_URL = (await shared.started).url
}

export async function teardown(): Promise<void> {
  shared.users -= 1
  if (shared.users > 0 || !shared.started) return
  const pg = await shared.started
  shared.started = undefined
  await pg.stop()
}
