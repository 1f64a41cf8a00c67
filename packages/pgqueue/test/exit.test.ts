import { spawn } from 'node:child_process'
import { resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createIsolatedDatabase, type IsolatedDatabase } from '@pgqueue/testing'

let t: IsolatedDatabase
beforeAll(async () => {
  t = await createIsolatedDatabase('exit')
})
afterAll(async () => {
  await t.cleanup()
})

/** Runs a fixture script in its own Node process; resolves with the ms from its "closed" line to exit. */
function exitDelay(script: string, args: string[]): Promise<number> {
  return new Promise((done, fail) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', '--conditions=@pgqueue/source', resolve(import.meta.dirname, 'fixtures', script), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let err = ''
    proc.stdout.on('data', (d) => (out += d))
    proc.stderr.on('data', (d) => (err += d))
    proc.on('exit', (code) => {
      const exitedAt = Date.now()
      const closedAt = Number(/closed (\d+)/.exec(out)?.[1])
      if (code !== 0 || !closedAt) fail(new Error(`${script} exited ${code}: ${err || out}`))
      else done(exitedAt - closedAt)
    })
  })
}

describe('a script that uses pgqueue', () => {
  it('exits within a second of close(): initialize, quickstart, one push', async () => {
    const delay = await exitDelay('push-and-close.ts', [t.adminUrl, t.userUrl, t.schema, t.workerRole, t.userRole])
    expect(delay).toBeLessThan(1000)
  })

  it('exits within a second of stopping a Worker, a Scheduler, a ScheduleRunner and Maintenance', async () => {
    const delay = await exitDelay('components-stop.ts', [t.adminUrl, t.workerUrl, t.schema])
    expect(delay).toBeLessThan(1000)
  })
})
