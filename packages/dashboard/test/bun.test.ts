import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { migrate } from '@pgqueue/core'
import { createIsolatedDatabase, type IsolatedDatabase } from '@pgqueue/testing'

const bun = resolve(import.meta.dirname, '../../../node_modules/.bin/bun')
let t: IsolatedDatabase

beforeAll(async () => {
  t = await createIsolatedDatabase('dashbun')
  await migrate(t.adminUrl, t.schemaOptions)
})
afterAll(async () => {
  await t?.cleanup()
})

it.skipIf(!existsSync(bun))('mounts under a prefix in Bun.serve, live stream included', async () => {
  const child = spawn(bun, ['--conditions=@pgqueue/source', 'test/fixtures/bun-serve.ts', t.workerUrl, t.schema], {
    cwd: resolve(import.meta.dirname, '..'),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stderr.on('data', (d) => (output += d))
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)))
  try {
    const origin = await new Promise<string>((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`no address: ${output}`)), 30_000)
      child.stdout.on('data', (d) => {
        output += d
        const m = /listening (http:\S+)/.exec(output)
        if (m) {
          clearTimeout(timer)
          res(m[1]!)
        }
      })
    })
    expect(await (await fetch(`${origin}/`)).text()).toBe('app')
    const page = await fetch(`${origin}/q/queues`)
    expect(page.status).toBe(200)
    expect(await page.text()).toContain('href="/q/jobs"')
    const c = new AbortController()
    const events = await fetch(`${origin}/q/events`, { signal: c.signal })
    const reader = events.body!.getReader()
    let text = ''
    while (!text.includes('data: ')) text += new TextDecoder().decode((await reader.read()).value)
    expect(text).toContain('t:pending')
    c.abort()
  } finally {
    child.kill('SIGTERM')
  }
  expect(await exited).toBe(0)
}, 60_000)
