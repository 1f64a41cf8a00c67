import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { migrate } from '@pgqueue/core'
import { createProducer } from '@pgqueue/producer'
import { createIsolatedDatabase, waitFor, type IsolatedDatabase } from '@pgqueue/testing'
import { bundleCli, runCli, spawnCli } from './cli.js'

let t: IsolatedDatabase
let bin: string
let removeBundle: () => void
let dir: string
let names: Record<string, string>

beforeAll(async () => {
  ;[t, { bin, remove: removeBundle }] = await Promise.all([createIsolatedDatabase('cli_run'), bundleCli()])
  await migrate(t.adminUrl, t.schemaOptions)
  names = { PGQUEUE_SCHEMA: t.schema, PGQUEUE_WORKER_ROLE: t.workerRole, PGQUEUE_USER_ROLE: t.userRole }
  dir = mkdtempSync(join(tmpdir(), 'pgqueue-cli-'))
  writeFileSync(
    join(dir, 'pgqueue.config.mjs'),
    `export default {
      worker: {
        handlers: { double: async (job) => ({ result: { n: job.data.n * 2 } }) },
        options: { pollMs: 100, leaseMs: 5000 },
      },
      scheduler: { pollMs: 200 },
    }\n`,
  )
})
afterAll(async () => {
  removeBundle?.()
  if (dir) rmSync(dir, { recursive: true, force: true })
  await t?.cleanup()
})

/** Reads a child's stdout as NDJSON events until `until` is seen. */
async function waitForEvent(child: ReturnType<typeof spawnCli>, until: string): Promise<Record<string, unknown>[]> {
  const events: Record<string, unknown>[] = []
  let buffer = ''
  let stderr = ''
  child.stderr!.on('data', (d) => (stderr += d))
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${until} event; stderr: ${stderr}`)), 20_000)
    child.stdout!.on('data', (d) => {
      buffer += d
      // --json prints one pretty document per event; they are separated by a closing brace at column 0.
      const parts = buffer.split(/(?<=^\})\n/m)
      buffer = parts.pop() ?? ''
      for (const p of parts) events.push(JSON.parse(p))
      if (events.some((e) => e.event === until)) {
        clearTimeout(timer)
        resolve(events)
      }
    })
    child.on('exit', (code) => {
      clearTimeout(timer)
      if (!events.some((e) => e.event === until)) reject(new Error(`exited ${code} before ${until}; stderr: ${stderr}`))
    })
  })
}

describe('pgqueue worker, scheduler, schedule-runner, maintenance', () => {
  it('runs a Worker from the config module and drains it on SIGTERM', async () => {
    const child = spawnCli(bin, ['worker', '--node-id', 'cli-w1', '--json'], { ...names, PGQUEUE_DATABASE_URL: t.workerUrl }, dir)
    const started = await waitForEvent(child, 'started')
    expect(started[0]).toMatchObject({ event: 'started', component: 'worker', nodeId: 'cli-w1' })
    const p = createProducer(t.userUrl, t.schemaOptions)
    const job = await p.queues.withTenant('acme').push({ queue: 'math', type: 'double', payload: { n: 21 } })
    const done = await waitFor(async () => (await p.queues.withTenant('acme').get(job.id))?.kind === 'history' && p.queues.withTenant('acme').get(job.id), { timeoutMs: 15_000 })
    await p.close()
    expect(done).toMatchObject({ state: 'completed', resultData: { n: 42 }, workerId: 'cli-w1' })
    const stopped = waitForEvent(child, 'stopped')
    child.kill('SIGTERM')
    const [code] = await once(child, 'exit')
    expect(code).toBe(0)
    expect((await stopped).find((e) => e.event === 'stopped')).toMatchObject({ signal: 'SIGTERM' })
  })

  it('runs a Scheduler, a ScheduleRunner and Maintenance until SIGINT', async () => {
    for (const [command, url] of [['scheduler', t.workerUrl], ['schedule-runner', t.workerUrl], ['maintenance', t.adminUrl]] as const) {
      const child = spawnCli(bin, [command, '--json'], { ...names, PGQUEUE_DATABASE_URL: url }, dir)
      await waitForEvent(child, 'started')
      if (command === 'scheduler') await waitFor(async () => (await t.admin.query(`select 1 from "${t.schema}".nodes where kind = 'scheduler'`)).rowCount === 1, { message: 'scheduler heartbeat' })
      const stopped = waitForEvent(child, 'stopped')
      child.kill('SIGINT')
      const [code] = await once(child, 'exit')
      expect(code, command).toBe(0)
      expect((await stopped).at(-1)).toMatchObject({ event: 'stopped', component: command, signal: 'SIGINT' })
    }
  })

  it('serves the dashboard until SIGTERM', async () => {
    const child = spawnCli(bin, ['dashboard', '--port', '0', '--json'], { ...names, PGQUEUE_DATABASE_URL: t.workerUrl }, dir)
    const started = (await waitForEvent(child, 'started')).find((e) => e.event === 'started')!
    expect(started).toMatchObject({ component: 'dashboard', address: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/$/) })
    const page = await fetch(String(started.address))
    expect(page.status).toBe(200)
    expect(await page.text()).toMatch(/pgqueue/)
    const stopped = waitForEvent(child, 'stopped')
    child.kill('SIGTERM')
    const [code] = await once(child, 'exit')
    expect(code).toBe(0)
    expect((await stopped).at(-1)).toMatchObject({ event: 'stopped', component: 'dashboard', signal: 'SIGTERM' })
  })

  it('needs worker.handlers in the config, and the owner for Maintenance', async () => {
    const noConfig = await runCli(bin, ['worker'], { env: { ...names, PGQUEUE_DATABASE_URL: t.workerUrl } })
    expect(noConfig.code).toBe(2)
    expect(noConfig.stderr).toMatch(/^pgqueue: pgqueue worker needs a config file exporting worker.handlers/)
    const wrongRole = await runCli(bin, ['maintenance'], { env: { ...names, PGQUEUE_DATABASE_URL: t.workerUrl }, cwd: dir })
    expect(wrongRole.code).toBe(4)
    expect(wrongRole.stderr.trim().split('\n')).toHaveLength(1)
    expect(wrongRole.stderr).toMatch(/^pgqueue: Maintenance: this login is a member of the worker role/)
  })
})

describe('bad input', () => {
  it('unknown flags and commands: one line, exit 2', async () => {
    const flag = await runCli(bin, ['status', '--bogus'])
    expect(flag.code).toBe(2)
    expect(flag.stderr).toBe("error: unknown option '--bogus'\n")
    const command = await runCli(bin, ['frobnicate'])
    expect(command.code).toBe(2)
    expect(command.stderr).toBe("error: unknown command 'frobnicate'\n")
  })

  it('no URL, a bad URL, a bad config file: one line, exit 2', async () => {
    const none = await runCli(bin, ['status'])
    expect(none).toMatchObject({ code: 2, stderr: 'pgqueue: no database URL: pass --url, set PGQUEUE_DATABASE_URL (or DATABASE_URL), or set databaseUrl in the config file\n' })
    const bad = await runCli(bin, ['status', '--url', 'mysql://x'])
    expect(bad.code).toBe(2)
    writeFileSync(join(dir, 'broken.json'), '{ "schema": ')
    const config = await runCli(bin, ['status', '--config', join(dir, 'broken.json')])
    expect(config.code).toBe(2)
    expect(config.stderr).toMatch(/^pgqueue: cannot load config file .*broken.json: /)
  })

  it('with --json, an error is also one JSON document on stdout', async () => {
    const r = await runCli(bin, ['status', '--json', '--url', 'postgres://nobody@127.0.0.1:1/none'])
    expect(r.code).toBe(3)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
    expect(r.json()).toEqual({ error: { message: expect.stringMatching(/^cannot reach the database/), exitCode: 3 } })
    const flag = await runCli(bin, ['status', '--json', '--bogus'])
    expect(flag.code).toBe(2)
    expect(flag.json()).toEqual({ error: { message: "unknown option '--bogus'", exitCode: 2 } })
  })

  it('an unreachable database: one line and exit 3; the stack only with --verbose', async () => {
    const r = await runCli(bin, ['status', '--url', 'postgres://nobody@127.0.0.1:1/none'])
    expect(r.code).toBe(3)
    expect(r.stderr).toMatch(/^pgqueue: cannot reach the database \(ECONNREFUSED\)/)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
    const verbose = await runCli(bin, ['status', '--url', 'postgres://nobody@127.0.0.1:1/none', '--verbose'])
    expect(verbose.code).toBe(3)
    expect(verbose.stderr).toMatch(/\n\s+at /)
  })

  it('a login that does not exist is refused at connect (exit 3)', async () => {
    const url = new URL(t.workerUrl)
    url.username = `${t.schema}_nobody`
    const r = await runCli(bin, ['status', '--url', url.toString()])
    expect(r.code).toBe(3)
    expect(r.stderr).toMatch(/^pgqueue: cannot connect to the database: .*nobody/)
  })

  it('flags beat PGQUEUE_* variables, which beat the config file', async () => {
    writeFileSync(join(dir, 'settings.json'), JSON.stringify({ databaseUrl: t.workerUrl, schema: 'from_config' }))
    const fromConfig = await runCli(bin, ['status', '--json', '--config', join(dir, 'settings.json')])
    expect(fromConfig.json().schema).toBe('from_config')
    const fromEnv = await runCli(bin, ['status', '--json', '--config', join(dir, 'settings.json')], { env: { PGQUEUE_SCHEMA: t.schema } })
    expect(fromEnv.json()).toMatchObject({ schema: t.schema, installed: true, loginRole: 'worker' })
    const fromFlag = await runCli(bin, ['status', '--json', '--schema', 'from_flag'], { env: { PGQUEUE_SCHEMA: t.schema, PGQUEUE_CONFIG: join(dir, 'settings.json') } })
    expect(fromFlag.json().schema).toBe('from_flag')
  })
})
