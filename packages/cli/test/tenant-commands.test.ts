import { writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { migrate } from '@pgqueue/core'
import { createProducer } from '@pgqueue/producer'
import { createIsolatedDatabase, type IsolatedDatabase } from '@pgqueue/testing'
import { bundleCli, runCli } from './cli.js'

let t: IsolatedDatabase
let bin: string
let removeBundle: () => void
/** The user role, with the tenant secret: what an operator's script or an API's job uses. */
let userEnv: Record<string, string>
/** The worker role: sees every tenant (queues, stats). */
let workerEnv: Record<string, string>

beforeAll(async () => {
  ;[t, { bin, remove: removeBundle }] = await Promise.all([createIsolatedDatabase('cli_tenant'), bundleCli()])
  await migrate(t.adminUrl, t.schemaOptions)
  const names = { PGQUEUE_SCHEMA: t.schema, PGQUEUE_WORKER_ROLE: t.workerRole, PGQUEUE_USER_ROLE: t.userRole }
  userEnv = { ...names, PGQUEUE_DATABASE_URL: t.userUrl, PGQUEUE_TENANT_SECRET: t.tenantSecret }
  workerEnv = { ...names, DATABASE_URL: t.workerUrl }
})
afterAll(async () => {
  removeBundle?.()
  await t?.cleanup()
})

describe('pgqueue push', () => {
  it('pushes one job from flags', async () => {
    const r = await runCli(bin, ['push', '--tenant', 'acme', '--queue', 'emails', '--type', 'send', '--payload', '{"to":"a@b.c"}', '--key', 'k1', '--delay', '1h', '--json'], { env: userEnv })
    expect(r.code, r.stderr).toBe(0)
    expect(r.json()).toMatchObject({ queue: 'emails', key: 'k1', state: 'scheduled', outcome: 'created' })
  })

  it('pushes NDJSON from stdin in batches and lists refused lines with their number and reason', async () => {
    const lines = [
      JSON.stringify({ type: 'import', payload: { n: 1 } }),
      '{"type": "import", "payload": ',
      JSON.stringify({ type: 'import', priority: 'high' }),
      '',
      JSON.stringify({ type: 'import', tenant: 'other' }),
      ...Array.from({ length: 6 }, (_, i) => JSON.stringify({ type: 'import', payload: { n: i + 2 }, runAt: new Date(Date.now() + 3_600_000).toISOString() })),
    ]
    const r = await runCli(bin, ['push', '--tenant', 'acme', '--queue', 'imports', '--file', '-', '--batch', '3', '--json'], { env: userEnv, input: `${lines.join('\n')}\n` })
    expect(r.code, r.stderr).toBe(6)
    const s = r.json()
    expect(s).toMatchObject({ lines: 11, pushed: 7, created: 7 })
    expect(s.refused.map((x: { line: number }) => x.line)).toEqual([2, 3, 5])
    expect(s.refused[0].reason).toMatch(/not valid JSON/)
    expect(s.refused[1].reason).toMatch(/^priority: /)
    expect(s.refused[2].reason).toMatch(/unknown field tenant/)
    expect(r.stderr).toBe('') // no progress line off a TTY
    const { rows } = await t.admin.query(`select count(*)::int as n from "${t.schema}".jobs where tenant_id = 'acme' and queue = 'imports'`)
    expect(rows[0].n).toBe(7)
  })

  it('reads an NDJSON file and prints a plain summary', async () => {
    const file = join(tmpdir(), `pgqueue-cli-${process.pid}.ndjson`)
    writeFileSync(file, `${JSON.stringify({ queue: 'files', type: 'x' })}\n${JSON.stringify({ queue: 'files', type: 'x', key: 'same' })}\n${JSON.stringify({ queue: 'files', type: 'x', key: 'same' })}\n`)
    const r = await runCli(bin, ['push', '--tenant', 'acme', '--file', file], { env: userEnv })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/^2 pushed \(2 created, 0 replaced, 1 superseded\) from 3 lines/)
    const missing = await runCli(bin, ['push', '--tenant', 'acme', '--file', `${file}.missing`], { env: userEnv })
    expect(missing.code).toBe(2)
    expect(missing.stderr).toMatch(/^pgqueue: cannot read .*ENOENT/)
  })
})

describe('pgqueue jobs', () => {
  it('lists, gets, cancels, retries and deletes one tenant\'s jobs', async () => {
    const list = await runCli(bin, ['jobs', 'list', '--tenant', 'acme', '--queue', 'emails', '--json'], { env: userEnv })
    expect(list.code, list.stderr).toBe(0)
    const [job] = list.json().items
    expect(job).toMatchObject({ queue: 'emails', key: 'k1', data: { to: 'a@b.c' } })

    const get = await runCli(bin, ['jobs', 'get', job.id, '--tenant', 'acme', '--json'], { env: userEnv })
    expect(get.json()).toMatchObject({ id: job.id, kind: 'live' })
    // Another tenant cannot see it.
    const other = await runCli(bin, ['jobs', 'get', job.id, '--tenant', 'globex'], { env: userEnv })
    expect(other.code).toBe(1)
    expect(other.stderr).toBe(`pgqueue: job ${job.id} not found for tenant globex\n`)

    const cancel = await runCli(bin, ['jobs', 'cancel', job.id, '--tenant', 'acme', '--json'], { env: userEnv })
    expect(cancel.json()).toEqual({ id: job.id, outcome: 'cancelled' })
    const history = await runCli(bin, ['jobs', 'list', '--tenant', 'acme', '--history', '--state', 'cancelled', '--json'], { env: userEnv })
    expect(history.json().items.map((i: { id: string }) => i.id)).toEqual([job.id])

    const retry = await runCli(bin, ['jobs', 'retry', job.id, '--tenant', 'acme', '--json'], { env: userEnv })
    expect(retry.code, retry.stderr).toBe(0)
    const retried = retry.json()
    expect(retried.id).not.toBe(job.id)

    const del = await runCli(bin, ['jobs', 'delete', retried.id, '--tenant', 'acme'], { env: userEnv })
    expect(del.stdout).toBe(`${retried.id}: deleted\n`)
    const again = await runCli(bin, ['jobs', 'delete', retried.id, '--tenant', 'acme'], { env: userEnv })
    expect(again.code).toBe(1)
  })

  it('refuses a bad state, a missing --tenant and a bad limit before touching the database', async () => {
    const state = await runCli(bin, ['jobs', 'list', '--tenant', 'acme', '--state', 'done'], { env: userEnv })
    expect(state.code).toBe(2)
    expect(state.stderr).toMatch(/^pgqueue: --state: expected one of scheduled, pending, held, running/)
    const tenant = await runCli(bin, ['jobs', 'list'], { env: userEnv })
    expect(tenant.code).toBe(2)
    expect(tenant.stderr).toMatch(/required option '--tenant <id>' not specified/)
    const limit = await runCli(bin, ['jobs', 'list', '--tenant', 'acme', '--limit', 'ten'], { env: userEnv })
    expect(limit.code).toBe(2)
  })
})

describe('pgqueue schedules', () => {
  it('lists, pauses, resumes and triggers a schedule', async () => {
    const p = createProducer(t.userUrl, t.schemaOptions)
    await p.schedules.withTenant('acme').create({ key: 'nightly', queue: 'reports', type: 'build', schedule: { cron: '0 3 * * *' }, payload: { full: true } })
    await p.close()
    const list = await runCli(bin, ['schedules', 'list', '--tenant', 'acme', '--json'], { env: userEnv })
    expect(list.json().items).toEqual([expect.objectContaining({ key: 'nightly', paused: false })])
    const text = await runCli(bin, ['schedules', 'list', '--tenant', 'acme'], { env: userEnv })
    expect(text.stdout).toMatch(/^key +queue +type +schedule/)
    expect(text.stdout).toContain('0 3 * * * UTC')

    const pause = await runCli(bin, ['schedules', 'pause', 'nightly', '--tenant', 'acme', '--json'], { env: userEnv })
    expect(pause.json()).toMatchObject({ key: 'nightly', paused: true })
    const resume = await runCli(bin, ['schedules', 'resume', 'nightly', '--tenant', 'acme', '--json'], { env: userEnv })
    expect(resume.json()).toMatchObject({ key: 'nightly', paused: false })
    const trigger = await runCli(bin, ['schedules', 'trigger', 'nightly', '--tenant', 'acme', '--json'], { env: userEnv })
    expect(trigger.code, trigger.stderr).toBe(0)
    expect(trigger.json().job).toMatchObject({ queue: 'reports', outcome: 'created', state: 'pending' })
    const missing = await runCli(bin, ['schedules', 'pause', 'nope', '--tenant', 'acme'], { env: userEnv })
    expect(missing.code).toBe(1)
    expect(missing.stderr).toBe('pgqueue: schedule nope not found for tenant acme\n')
  })
})

describe('pgqueue flows', () => {
  it('shows a flow with what each job waits for, cancels it, and refuses another tenant', async () => {
    const p = createProducer(t.userUrl, t.schemaOptions)
    const created = await p.queues.withTenant('acme').flow([
      { ref: 'fetch', queue: 'etl', type: 'fetch', delay: 3_600_000 },
      { ref: 'load', queue: 'etl', type: 'load', dependsOn: ['fetch'] },
    ])
    await p.close()
    const get = await runCli(bin, ['flows', 'get', created.flowId, '--tenant', 'acme', '--json'], { env: userEnv })
    expect(get.code, get.stderr).toBe(0)
    expect(get.json()).toMatchObject({ flowId: created.flowId, finished: false, counts: { scheduled: 1, waiting: 1 } })
    const plain = await runCli(bin, ['flows', 'get', created.flowId, '--tenant', 'acme'], { env: userEnv })
    expect(plain.stdout).toMatch(/load .*waiting\s+fetch/)
    const other = await runCli(bin, ['flows', 'get', created.flowId, '--tenant', 'globex'], { env: userEnv })
    expect(other.code).toBe(1)
    expect(other.stderr).toMatch(/^pgqueue: flow .* not found for tenant globex/)
    const cancel = await runCli(bin, ['flows', 'cancel', created.flowId, '--tenant', 'acme', '--json'], { env: userEnv })
    expect(cancel.code, cancel.stderr).toBe(0)
    expect(cancel.json()).toEqual({ cancelled: 2, cancelRequested: 0 })
    const bad = await runCli(bin, ['flows', 'get', 'not-a-uuid', '--tenant', 'acme'], { env: userEnv })
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/flowId/)
  })
})

describe('pgqueue queues and stats', () => {
  it('counts every tenant with the worker role, one with --tenant', async () => {
    const all = await runCli(bin, ['queues', '--json'], { env: workerEnv })
    expect(all.code, all.stderr).toBe(0)
    const imports = all.json().find((q: { queue: string }) => q.queue === 'imports')
    expect(imports).toMatchObject({ scheduled: 6, pending: 1 })
    const globex = await runCli(bin, ['queues', '--tenant', 'globex', '--json'], { env: userEnv })
    expect(globex.json()).toEqual([])
    const text = await runCli(bin, ['queues'], { env: workerEnv })
    expect(text.stdout).toMatch(/^queue +pending +scheduled/)

    const stats = await runCli(bin, ['stats', '--window', '2h', '--json'], { env: workerEnv })
    expect(stats.code, stats.stderr).toBe(0)
    expect(stats.json()).toMatchObject({ windowMs: 7_200_000, schedules: { total: 1, paused: 0 } })
    expect(stats.json().queues.map((q: { queue: string }) => q.queue)).toContain('emails')
    const bad = await runCli(bin, ['stats', '--window', 'soon'], { env: workerEnv })
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/^pgqueue: --window: expected a duration/)
  })
})
