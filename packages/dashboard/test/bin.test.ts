import { spawn } from 'node:child_process'
import { resolve } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { migrate } from '@pgqueue/core'
import { createIsolatedDatabase, type IsolatedDatabase } from '@pgqueue/testing'

let t: IsolatedDatabase

beforeAll(async () => {
  t = await createIsolatedDatabase('dashbin')
  await migrate(t.adminUrl, t.schemaOptions)
})
afterAll(async () => {
  await t?.cleanup()
})

it('pgqueue-dashboard serves the dashboard and stops on SIGTERM', async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=@pgqueue/source', 'src/bin.ts', '--url', t.workerUrl, '--schema', t.schema, '--port', '0', '--base-path', '/ops'], {
    cwd: resolve(import.meta.dirname, '..'),
    env: { ...process.env, PGQUEUE_TENANT_SECRET: t.tenantSecret },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stderr.on('data', (d) => (output += d))
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)))
  try {
    const address = await new Promise<string>((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`no address printed: ${output}`)), 30_000)
      child.stdout.on('data', (d) => {
        output += d
        const m = /dashboard on (http:\S+)/.exec(output)
        if (m) {
          clearTimeout(timer)
          res(m[1]!)
        }
      })
    })
    expect(address).toMatch(/\/ops\/$/)
    const page = await fetch(address)
    expect(page.status).toBe(200)
    const body = await page.text()
    expect(body).toContain('<h1>Overview</h1>')
    expect(body).toContain('read-only') // no --action-url
  } finally {
    child.kill('SIGTERM')
  }
  expect(await exited).toBe(0)
}, 60_000)
