import { existsSync, mkdirSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { join } from 'node:path'
import { chromium, type Browser, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { silentLogger } from '@pgqueue/core'
import { Scheduler } from '@pgqueue/scheduler'
import { waitFor } from '@pgqueue/testing'
import { createDashboard, toNodeHandler, type Dashboard } from '../src/index.js'
import { seed, type Seeded } from './seed.js'

// Debian's chromium (.ci/run installs it when missing); never a browser download.
const CHROMIUM = process.env.PGQUEUE_CHROMIUM ?? '/usr/bin/chromium'
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run']
const SHOTS = join(import.meta.dirname, '.artifacts')

let s: Seeded
let operator: Dashboard
let tenant: Dashboard
let server: Server
let origin: string
let browser: Browser
let scheduler: Scheduler

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true })
  s = await seed('dashb')
  scheduler = Scheduler.create(s.t.workerUrl, { ...s.t.schemaOptions, pollMs: 100, logger: silentLogger })
  await scheduler.start()
  const common = { schema: s.t.schema, tenantSecret: s.t.tenantSecret, refreshMs: 500, onError: (e: unknown) => console.error(e) }
  operator = createDashboard({ ...common, mode: 'operator', connection: s.t.workerUrl, actionConnection: s.t.userUrl, basePath: '/ops', title: 'pgqueue (operator)' })
  // The tenant comes from a cookie here; an application takes it from its own session.
  tenant = createDashboard({
    ...common,
    mode: 'tenant',
    connection: s.t.userUrl,
    basePath: '/app',
    resolveTenant: (r) => /(?:^|; )tenant=([^;]+)/.exec(r.headers.get('cookie') ?? '')?.[1] ?? null,
  })
  const ops = toNodeHandler(operator.fetch)
  const app = toNodeHandler(tenant.fetch)
  server = createServer((req, res) => void (req.url?.startsWith('/app') ? app(req, res) : ops(req, res)))
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const addr = server.address() as { port: number }
  origin = `http://127.0.0.1:${addr.port}`
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS })
}, 120_000)

afterAll(async () => {
  await browser?.close()
  server?.closeAllConnections()
  await new Promise((r) => server?.close(r))
  await operator?.close()
  await tenant?.close()
  await scheduler?.stop()
  await s?.worker.stop()
  await s?.producer.close()
  await s?.t.cleanup()
})

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true })
}

describe.skipIf(!existsSync(CHROMIUM))('in a real browser', () => {
  it('clicks through every page as the operator', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 300 } })
    page.on('dialog', (d) => void d.accept())
    try {
      await page.goto(`${origin}/ops?range=1h`)
      await expect.poll(() => page.textContent('h1')).toBe('Overview')
      await page.waitForSelector('svg#throughput')
      // The live counts arrive over server-sent events from the shared refresh.
      await page.waitForFunction("document.getElementById('live')?.textContent === 'live'")
      expect(await page.textContent('[data-live="t:pending"]')).toMatch(/^\d+$/)
      await page.waitForSelector('#tenant-waits td')
      await shot(page, 'overview')

      for (const [link, heading] of [['Queues', 'Queues'], ['Jobs', 'Jobs'], ['Schedules', 'Schedules'], ['Failures', 'Failures']]) {
        await page.click(`header nav >> text=${link}`)
        await expect.poll(() => page.textContent('h1')).toBe(heading)
      }
    } finally {
      await page.close()
    }
  })

  it('pauses a queue', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 300 } })
    try {
      await page.goto(`${origin}/ops/queues`)
      const row = 'tr[data-tenant="acme"][data-queue="emails"]'
      await page.click(`${row} button[data-action="queue.pause"]`)
      await page.waitForSelector('.flash')
      expect(await page.textContent('.flash')).toContain('Queue emails paused')
      expect(await page.textContent(`${row} .queue-state`)).toBe('paused')
      expect(await page.textContent('tr[data-tenant="globex"][data-queue="emails"] .queue-state')).toBe('active')
      const held = await s.t.admin.query(`select state from "${s.t.schema}".jobs where tenant_id = 'acme' and queue = 'emails'`)
      expect(held.rows.map((r) => r.state)).toEqual(['held', 'held'])
      await shot(page, 'queues')
    } finally {
      await page.close()
    }
  })

  it('filters jobs by a target field and opens one', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 300 } })
    try {
      await page.goto(`${origin}/ops/jobs`)
      await page.fill('input[name="target"]', 'customer.id=7')
      await page.click('form.filters button[type="submit"]')
      await page.waitForURL(/target=customer.id/)
      const ids = await page.$$eval('#jobs tbody tr td:nth-child(2)', (tds) => tds.map((td) => td.textContent))
      expect(ids.sort()).toEqual([s.acmeJob7, s.globexJob].sort())
      await shot(page, 'jobs')
      await page.click(`a:has-text("${s.acmeJob7}")`)
      await expect.poll(() => page.textContent('h1')).toBe(`Job ${s.acmeJob7}`)
      expect(await page.textContent('pre.payload')).toContain('"to": "a@example.com"')
      expect(await page.textContent('pre#target')).toContain('"region": "eu"')
      await shot(page, 'job')
    } finally {
      await page.close()
    }
  })

  it('retries a failed job and sees it complete', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 300 } })
    page.on('dialog', (d) => void d.accept())
    try {
      await page.goto(`${origin}/ops/jobs/${s.acmeFailed}?tenant=acme`)
      expect(await page.textContent('#job-state')).toBe('failed')
      expect(await page.textContent('#error')).toContain('report backend unavailable')
      await shot(page, 'job-failed')
      s.failing.on = false
      await page.click('button[data-action="job.retry"]')
      await page.waitForSelector('.flash')
      expect(await page.textContent('.flash')).toContain('Pushed again as job')
      expect(await page.textContent('#job')).toContain(s.acmeFailed) // retry of
      await waitFor(
        async () => {
          await page.reload()
          return (await page.textContent('#job-state')) === 'completed'
        },
        { timeoutMs: 20_000, intervalMs: 300, message: 'the retried job completes' },
      )
      await shot(page, 'job-retried')
    } finally {
      await page.close()
    }
  })

  it('pauses a schedule, runs one now, and bulk-retries failures', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 300 } })
    page.on('dialog', (d) => void d.accept())
    try {
      await page.goto(`${origin}/ops/schedules`)
      await page.click('tr[data-key="nightly"] button[data-action="schedule.pause"]')
      await page.waitForSelector('.flash')
      expect(await page.textContent('tr[data-key="nightly"] .schedule-state')).toBe('paused')
      await page.click('tr[data-key="nightly"] button[data-action="schedule.run"]')
      await page.waitForSelector('.flash >> text=from schedule nightly')
      await shot(page, 'schedules')

      await page.goto(`${origin}/ops/failures`)
      expect(await page.textContent('#failures')).toContain('report backend unavailable')
      await shot(page, 'failures')
      // acme's failed job was retried already; only globex's is pushed again.
      await page.click('button[data-action="failures.retry"]')
      await page.waitForSelector('.flash')
      expect(await page.textContent('.flash')).toContain('Pushed 1 failed jobs again')
      await waitFor(async () => (await s.t.admin.query(`select 1 from "${s.t.schema}".job_history where tenant_id = 'globex' and retry_of = $1 and state = 'completed'`, [s.globexFailed])).rowCount === 1, {
        timeoutMs: 20_000,
        message: "globex's retry completes",
      })
    } finally {
      await page.close()
    }
  })

  it("keeps a tenant-mode page from the other tenant's job", async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 300 } })
    await context.addCookies([{ name: 'tenant', value: 'acme', url: origin }])
    const page = await context.newPage()
    try {
      await page.goto(`${origin}/app/jobs`)
      expect(await page.textContent('header .scope')).toContain('tenant acme')
      const body = await page.textContent('main')
      expect(body).toContain(s.acmeJob7)
      expect(body).not.toContain(s.globexJob)
      await shot(page, 'tenant-jobs')
      const res = await page.goto(`${origin}/app/jobs/${s.globexJob}?tenant=globex`)
      expect(res?.status()).toBe(404)
      expect(await page.textContent('main')).not.toContain('globex-only')
      await shot(page, 'tenant-other-job')
      expect((await page.goto(`${origin}/app/jobs/${s.globexFailed}`))?.status()).toBe(404)
      expect((await page.goto(`${origin}/app/jobs/${s.acmeJob8}`))?.status()).toBe(200)
      expect(await page.textContent('pre.payload')).toBe('plain text body')
    } finally {
      await context.close()
    }
  })

  it("draws a job's flow and links its parent, for one tenant only", async () => {
    // The root runs on the seed's worker ('reports'); the rest wait on a queue nobody serves.
    const flow = (prefix: string) => [
      { ref: `${prefix}-export`, queue: 'reports', type: 'report', payload: { n: 50 } },
      { ref: `${prefix}-pdf`, queue: 'flowq', type: 'render', dependsOn: [`${prefix}-export`] },
      { ref: `${prefix}-csv`, queue: 'flowq', type: 'render', dependsOn: [`${prefix}-export`] },
      { ref: `${prefix}-mail`, queue: 'flowq', type: 'send', dependsOn: [`${prefix}-pdf`, `${prefix}-csv`] },
    ]
    const acme = await s.producer.queues.withTenant('acme').flow(flow('acme'))
    const globex = await s.producer.queues.withTenant('globex').flow(flow('globex'))
    await waitFor(async () => (await s.t.admin.query(`select 1 from "${s.t.schema}".job_history where id = any($1) and state = 'completed'`, [[acme.jobs['acme-export'], globex.jobs['globex-export']]])).rowCount === 2, {
      timeoutMs: 20_000,
      message: 'both flow roots complete',
    })
    const context = await browser.newContext({ viewport: { width: 1280, height: 300 } })
    await context.addCookies([{ name: 'tenant', value: 'acme', url: origin }])
    const page = await context.newPage()
    try {
      await page.goto(`${origin}/app/jobs/${acme.jobs['acme-pdf']}`)
      await page.waitForSelector('svg#flow-graph')
      expect(await page.$$eval('svg#flow-graph a.node', (as) => as.length)).toBe(4)
      expect(await page.getAttribute('svg#flow-graph a.current', 'data-node')).toBe(acme.jobs['acme-pdf'])
      expect(await page.getAttribute(`svg#flow-graph a[data-node="${acme.jobs['acme-export']}"]`, 'class')).toContain('completed')
      expect(await page.$$eval('svg#flow-graph .edges path', (ps) => ps.length)).toBe(4)
      const text = await page.textContent('main')
      expect(text).toContain('acme-mail')
      expect(text).not.toContain('globex')
      await shot(page, 'job-flow')
      // The parent's link (in the node table) opens the parent's page: the finished root, from history.
      await page.click(`#flow-nodes tr.current a:has-text("acme-export")`)
      await expect.poll(() => page.textContent('h1')).toBe(`Job ${acme.jobs['acme-export']}`)
      expect(await page.textContent('#job-state')).toBe('completed')
      expect(await page.getAttribute('svg#flow-graph a.current', 'data-node')).toBe(acme.jobs['acme-export'])
      // The other tenant's flow job is not reachable from this tenant's dashboard.
      expect((await page.goto(`${origin}/app/jobs/${globex.jobs['globex-pdf']}`))?.status()).toBe(404)
    } finally {
      await context.close()
    }
    // The operator sees globex's flow on globex's job, with the tenant in every node link.
    const op = await browser.newPage({ viewport: { width: 1280, height: 300 } })
    try {
      await op.goto(`${origin}/ops/jobs/${globex.jobs['globex-mail']}?tenant=globex`)
      await op.waitForSelector('svg#flow-graph')
      const hrefs = await op.$$eval('svg#flow-graph a.node', (as) => as.map((a) => a.getAttribute('href')))
      expect(hrefs).toHaveLength(4)
      for (const h of hrefs) expect(h).toMatch(/^\/ops\/jobs\/[0-9a-f-]+\?tenant=globex$/)
      expect(await op.textContent('main')).not.toContain('acme-')
    } finally {
      await op.close()
    }
  })
})
