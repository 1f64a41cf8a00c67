import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDashboard, type Dashboard, type DashboardAction } from '../src/index.js'
import { SCAN_BUDGET, finishedNotBefore } from '../src/queries/jobs.js'
import { failureBudget } from '../src/queries/failures.js'
import { seed, type Seeded } from './seed.js'

let s: Seeded
let tenantDash: Dashboard
let operatorDash: Dashboard
const audit: DashboardAction[] = []
const BASE = 'http://dash.test'

beforeAll(async () => {
  s = await seed('dashh')
  await s.worker.stop()
  tenantDash = createDashboard({
    mode: 'tenant',
    connection: s.t.userUrl,
    tenantSecret: s.t.tenantSecret,
    schema: s.t.schema,
    resolveTenant: (r) => r.headers.get('x-tenant'),
    beforeAction: (a) => {
      audit.push(a)
      if (a.params.queue === 'forbidden') throw new Error('not allowed for you')
    },
  })
  operatorDash = createDashboard({ mode: 'operator', connection: s.t.workerUrl, actionConnection: s.t.userUrl, tenantSecret: s.t.tenantSecret, schema: s.t.schema, refreshMs: 300 })
})
afterAll(async () => {
  await tenantDash?.close()
  await operatorDash?.close()
  await s?.producer.close()
  await s?.t.cleanup()
})

const get = (d: Dashboard, path: string, tenant?: string) => d.fetch(new Request(BASE + path, { headers: tenant ? { 'x-tenant': tenant } : {} }))

/** The CSRF token in a page's forms. */
async function csrfOf(d: Dashboard, tenant?: string): Promise<string> {
  const body = await (await get(d, '/queues', tenant)).text()
  return /name="csrf" value="([^"]+)"/.exec(body)![1]!
}

function post(d: Dashboard, action: string, fields: Record<string, string>, opts: { tenant?: string; origin?: string } = {}) {
  return d.fetch(new Request(`${BASE}/actions/${action}`, {
    method: 'POST',
    body: new URLSearchParams({ return: '/jobs', ...fields }),
    headers: { ...(opts.tenant ? { 'x-tenant': opts.tenant } : {}), ...(opts.origin ? { origin: opts.origin } : {}), 'content-type': 'application/x-www-form-urlencoded' },
  }))
}

describe('tenant mode', () => {
  it('answers 403 when the resolver gives no tenant', async () => {
    expect((await get(tenantDash, '/')).status).toBe(403)
  })

  it('renders every page for one tenant, and nothing of the other', async () => {
    for (const path of ['/', '/queues', '/jobs', '/jobs?state=failed', '/schedules', '/failures']) {
      const res = await get(tenantDash, path, 'acme')
      expect(res.status, path).toBe(200)
      const body = await res.text()
      expect(body, path).not.toContain('globex')
      expect(body).not.toContain(s.globexJob)
    }
    expect(await (await get(tenantDash, '/jobs', 'acme')).text()).toContain(s.acmeJob7)
    expect(await (await get(tenantDash, '/schedules', 'acme')).text()).toContain('nightly')
  })

  it("cannot reach the other tenant's job by id, live or finished", async () => {
    for (const id of [s.globexJob, s.globexFailed]) {
      const res = await get(tenantDash, `/jobs/${id}`, 'acme')
      expect(res.status).toBe(404)
      expect(await res.text()).not.toContain('globex-only')
      // Operators' links carry ?tenant=; in tenant mode the parameter changes nothing.
      expect((await get(tenantDash, `/jobs/${id}?tenant=globex`, 'acme')).status).toBe(404)
    }
    const own = await get(tenantDash, `/jobs/${s.globexJob}`, 'globex')
    expect(own.status).toBe(200)
    expect(await own.text()).toContain('globex-only')
  })

  it("cannot act on the other tenant's rows by editing a form", async () => {
    const token = await csrfOf(tenantDash, 'acme')
    const retry = await post(tenantDash, 'job.retry', { csrf: token, id: s.globexFailed, tenant: 'globex' }, { tenant: 'acme' })
    expect(retry.status).toBe(404)
    const cancel = await post(tenantDash, 'job.cancel', { csrf: token, id: s.globexJob, tenant: 'globex' }, { tenant: 'acme' })
    expect(cancel.status).toBe(303)
    expect(cancel.headers.get('location')).toContain('already+finished')
    const pause = await post(tenantDash, 'queue.pause', { csrf: token, queue: 'emails', tenant: 'globex' }, { tenant: 'acme' })
    expect(pause.status).toBe(303)
    const paused = await s.t.admin.query(`select tenant_id from "${s.t.schema}".queues where paused`)
    expect(paused.rows.map((r) => r.tenant_id)).toEqual(['acme'])
    const live = await s.t.admin.query(`select count(*)::int as n from "${s.t.schema}".jobs where tenant_id = 'globex' and retry_of is not null`)
    expect(live.rows[0].n).toBe(0)
    expect((await s.t.admin.query(`select 1 from "${s.t.schema}".jobs where id = $1`, [s.globexJob])).rowCount).toBe(1)
    await post(tenantDash, 'queue.resume', { csrf: token, queue: 'emails' }, { tenant: 'acme' })
  })

  it('refuses POSTs without the CSRF token, with another scope token, or from another site', async () => {
    const token = await csrfOf(tenantDash, 'acme')
    const globexToken = await csrfOf(tenantDash, 'globex')
    expect(token).not.toBe(globexToken)
    expect((await post(tenantDash, 'queue.pause', { queue: 'emails' }, { tenant: 'acme' })).status).toBe(403)
    expect((await post(tenantDash, 'queue.pause', { csrf: globexToken, queue: 'emails' }, { tenant: 'acme' })).status).toBe(403)
    expect((await post(tenantDash, 'queue.pause', { csrf: token, queue: 'emails' }, { tenant: 'acme', origin: 'https://evil.example' })).status).toBe(403)
    expect((await s.t.admin.query(`select 1 from "${s.t.schema}".queues where paused`)).rowCount).toBe(0)
    // A GET never acts.
    expect((await get(tenantDash, '/actions/queue.pause?queue=emails', 'acme')).status).toBe(405)
  })

  it('calls beforeAction with the action, and a throw refuses it', async () => {
    const token = await csrfOf(tenantDash, 'acme')
    audit.length = 0
    const ok = await post(tenantDash, 'queue.configure', { csrf: token, queue: 'emails', maxConcurrency: '3', retryPolicy: '{"type":"constant","delayMs":1000,"maxAttempts":4}' }, { tenant: 'acme' })
    expect(ok.status).toBe(303)
    expect(audit[0]).toMatchObject({ name: 'queue.configure', tenantId: 'acme', params: { queue: 'emails', maxConcurrency: 3, retryPolicy: { type: 'constant', maxAttempts: 4 } } })
    const refused = await post(tenantDash, 'queue.pause', { csrf: token, queue: 'forbidden' }, { tenant: 'acme' })
    expect(refused.status).toBe(403)
    expect(await refused.text()).toContain('not allowed for you')
    expect((await s.t.admin.query(`select 1 from "${s.t.schema}".queues where queue = 'forbidden'`)).rowCount).toBe(0)
    const q = await s.t.admin.query(`select max_concurrency, retry_policy from "${s.t.schema}".queues where tenant_id = 'acme' and queue = 'emails'`)
    expect(q.rows[0]).toMatchObject({ max_concurrency: 3, retry_policy: { type: 'constant', maxAttempts: 4 } })
    await post(tenantDash, 'queue.configure', { csrf: token, queue: 'emails', maxConcurrency: '', retryPolicy: '' }, { tenant: 'acme' })
  })

  it("sends each tenant's live stream its own counts only", async () => {
    const first = async (tenant: string) => {
      const c = new AbortController()
      const res = await tenantDash.fetch(new Request(`${BASE}/events`, { headers: { 'x-tenant': tenant }, signal: c.signal }))
      const reader = res.body!.getReader()
      let text = ''
      while (!text.includes('data: ')) text += new TextDecoder().decode((await reader.read()).value)
      c.abort()
      await reader.cancel().catch(() => {})
      return JSON.parse(/data: (.*)\n/.exec(text)![1]!) as Record<string, unknown>
    }
    const acme = await first('acme')
    const globex = await first('globex')
    expect(acme['q:emails:pending']).toBe(2)
    expect(globex['q:emails:pending']).toBe(1)
  })

  it('filters jobs by a target field, and pages by keyset', async () => {
    const body = await (await get(tenantDash, `/jobs?target=${encodeURIComponent('customer.id=7')}`, 'acme')).text()
    expect(body).toContain(s.acmeJob7)
    expect(body).not.toContain(s.acmeJob8)
    const region = await (await get(tenantDash, `/jobs?target=${encodeURIComponent('region=us')}&queue=emails`, 'acme')).text()
    expect(region).toContain(s.acmeJob8)
    expect(region).not.toContain(s.acmeJob7)
    const future = new Date(Date.now() + 3_600_000).toISOString().slice(0, 16)
    const past = new Date(Date.now() - 3_600_000).toISOString().slice(0, 16)
    expect(await (await get(tenantDash, `/jobs?since=${future}`, 'acme')).text()).not.toContain(s.acmeJob7)
    expect(await (await get(tenantDash, `/jobs?since=${past}&until=${future}`, 'acme')).text()).toContain(s.acmeJob7)
    expect(await (await get(tenantDash, `/jobs?state=failed&since=${past}`, 'acme')).text()).toContain(s.acmeFailed)
    expect((await get(tenantDash, '/jobs?since=yesterday', 'acme')).status).toBe(400)
    expect((await get(tenantDash, '/jobs?target=nonsense', 'acme')).status).toBe(400)
    expect((await get(tenantDash, '/jobs?cursor=bad!', 'acme')).status).toBe(400)
  })
})

describe('operator mode', () => {
  it('sees every tenant', async () => {
    const jobs = await (await get(operatorDash, '/jobs')).text()
    expect(jobs).toContain(s.globexJob)
    expect(jobs).toContain(s.acmeJob7)
    const failures = await (await get(operatorDash, '/failures')).text()
    expect(failures).toContain('report backend unavailable')
    const detail = await get(operatorDash, `/jobs/${s.globexFailed}?tenant=globex`)
    expect(detail.status).toBe(200)
    const text = await detail.text()
    expect(text).toContain('report backend unavailable')
    expect(text).toContain('class="stack"')
  })

  it('finds a job by id without the tenant in the URL', async () => {
    for (const id of [s.globexJob, s.acmeFailed]) {
      const res = await get(operatorDash, `/jobs/${id}`)
      expect(res.status).toBe(200)
      expect(await res.text()).toContain(id)
    }
    expect((await get(operatorDash, '/jobs/01a22dab-595c-7001-90ce-71d9d1546134')).status).toBe(404)
    expect(finishedNotBefore(s.acmeJob7)!.getTime()).toBeLessThan(Date.now() - 86_000_000)
    expect(finishedNotBefore('4553cf26-8512-4324-8314-487e37f26a88')).toBeUndefined()
  })

  it('is read-only with readOnly, or without an action connection', async () => {
    const ro = createDashboard({ mode: 'operator', connection: s.t.workerUrl, schema: s.t.schema })
    try {
      expect(ro.options.readOnly).toBe(true)
      const body = await (await get(ro, '/queues')).text()
      expect(body).not.toContain('<form class="inline" method="post"')
      expect((await post(ro, 'queue.pause', { csrf: 'x', queue: 'emails', tenant: 'acme' })).status).toBe(403)
    } finally {
      await ro.close()
    }
  })

  it('serves many open pages from one shared refresh', async () => {
    const controllers = Array.from({ length: 5 }, () => new AbortController())
    const before = operatorDash.live.loads
    const started = Date.now()
    const streams = await Promise.all(controllers.map((c) => operatorDash.fetch(new Request(`${BASE}/events`, { signal: c.signal }))))
    const firsts = await Promise.all(
      streams.map(async (r) => {
        expect(r.headers.get('content-type')).toContain('text/event-stream')
        const reader = r.body!.getReader()
        let text = ''
        while (!text.includes('data: ')) text += new TextDecoder().decode((await reader.read()).value)
        return { reader, text }
      }),
    )
    await new Promise((r) => setTimeout(r, 1_000))
    expect(operatorDash.live.pages).toBe(5)
    const elapsed = Date.now() - started
    const loads = operatorDash.live.loads - before
    // One load per interval for all five pages (one per page would be five times as many).
    expect(loads).toBeLessThanOrEqual(Math.ceil(elapsed / 300) + 1)
    expect(firsts[0]!.text).toContain('t:pending')
    for (const c of controllers) c.abort()
    for (const f of firsts) await f.reader.cancel().catch(() => {})
    expect(operatorDash.live.pages).toBe(0)
  })

  it('mounts under a path prefix', async () => {
    const d = createDashboard({ mode: 'operator', connection: s.t.workerUrl, schema: s.t.schema, basePath: '/admin/queues/' })
    try {
      const res = await get(d, '/admin/queues')
      expect(res.status).toBe(200)
      const body = await res.text()
      expect(body).toContain('href="/admin/queues/jobs"')
      expect(body).toContain('/admin/queues/assets/app.css')
      expect((await get(d, '/admin/queues/assets/app.js')).status).toBe(200)
      expect((await get(d, '/elsewhere')).status).toBe(404)
    } finally {
      await d.close()
    }
  })
})

describe('flow graph on a job page', () => {
  const nodes = (prefix: string) => [
    { ref: `${prefix}-fetch`, queue: 'flowq', type: 'fetch' },
    { ref: `${prefix}-thumb`, queue: 'flowq', type: 'thumb', dependsOn: [`${prefix}-fetch`] },
    { ref: `${prefix}-ocr`, queue: 'flowq', type: 'ocr', dependsOn: [`${prefix}-fetch`] },
    { ref: `${prefix}-merge`, queue: 'flowq', type: 'merge', dependsOn: [`${prefix}-thumb`, `${prefix}-ocr`] },
  ]
  const hrefOf = (body: string, ref: string) => new RegExp(`<a href="([^"]+)">${ref}</a>`).exec(body)?.[1]

  it("shows the job's flow in layers, its parents and children linked, this job highlighted", async () => {
    const a = await s.producer.queues.withTenant('acme').flow(nodes('acme'))
    const g = await s.producer.queues.withTenant('globex').flow(nodes('globex'))
    const res = await get(tenantDash, `/jobs/${a.jobs['acme-thumb']}`, 'acme')
    expect(res.status).toBe(200)
    const body = await res.text()
    expect(body).toContain('id="flow-graph"')
    expect(body).toContain(a.flowId)
    for (const ref of ['acme-fetch', 'acme-thumb', 'acme-ocr', 'acme-merge']) expect(body).toContain(ref)
    expect(body).toContain(`class="node waiting current" data-node="${a.jobs['acme-thumb']}"`)
    expect(body).toContain(`class="node pending" data-node="${a.jobs['acme-fetch']}"`)
    // The table: thumb's parent is fetch, its child merge, and merge sits two columns right of fetch.
    const row = new RegExp(`<tr class="current" data-node="${a.jobs['acme-thumb']}">(.*?)</tr>`).exec(body)![1]!
    expect(row).toContain(`<a href="/jobs/${a.jobs['acme-fetch']}">acme-fetch</a></td><td><a href="/jobs/${a.jobs['acme-merge']}">acme-merge</a>`)
    expect(new RegExp(`data-node="${a.jobs['acme-merge']}"><td class="num">2</td>`).test(body)).toBe(true)
    // The parent's link opens the parent's page.
    const parent = await get(tenantDash, hrefOf(body, 'acme-fetch')!, 'acme')
    expect(parent.status).toBe(200)
    expect(await parent.text()).toContain(`class="node pending current" data-node="${a.jobs['acme-fetch']}"`)
    // Nothing of the other tenant's flow, and its pages stay out of reach.
    expect(body).not.toContain('globex')
    expect(body).not.toContain(g.flowId)
    expect((await get(tenantDash, `/jobs/${g.jobs['globex-thumb']}`, 'acme')).status).toBe(404)
    // The operator sees each flow under its own tenant, links carrying it.
    const op = await (await get(operatorDash, `/jobs/${g.jobs['globex-merge']}?tenant=globex`)).text()
    expect(op).toContain(`/jobs/${g.jobs['globex-thumb']}?tenant=globex`)
    expect(op).not.toContain('acme-')
    // A job outside any flow has no flow section.
    expect(await (await get(tenantDash, `/jobs/${s.acmeJob7}`, 'acme')).text()).not.toContain('flow-graph')
  })

  it('caps a large flow, this job and its neighbours first, and says how many were left out', async () => {
    const big = await s.producer.queues.withTenant('acme').flow([
      { ref: 'split', queue: 'flowq', type: 'split' },
      ...Array.from({ length: 78 }, (_, i) => ({ ref: `part-${i}`, queue: 'flowq', type: 'part', dependsOn: ['split'] })),
      { ref: 'join', queue: 'flowq', type: 'join', dependsOn: Array.from({ length: 78 }, (_, i) => `part-${i}`) },
    ])
    const body = await (await get(tenantDash, `/jobs/${big.jobs.join}`, 'acme')).text()
    expect(body).toContain('80 nodes')
    expect(body).toContain('Showing 60 of 80 nodes')
    expect(body).toContain(`class="node waiting current" data-node="${big.jobs.join}"`)
    expect(body.match(/<a href="[^"]+" class="node /g)).toHaveLength(60)
    // The newest part's page shows its parent and its child, although join is the newest node of all.
    const last = await (await get(tenantDash, `/jobs/${big.jobs['part-77']}`, 'acme')).text()
    expect(last).toContain(`class="node waiting current" data-node="${big.jobs['part-77']}"`)
    expect(last).toContain(`class="node waiting" data-node="${big.jobs.join}"`)
    expect(last).toContain(`class="node pending" data-node="${big.jobs.split}"`)
  })
})

describe('a filter that matches few of many rows', () => {
  it('reads at most SCAN_BUDGET rows a page, says so, and the next pages go on to the match', async () => {
    // 25,000 live jobs of one tenant; only the oldest matches the target filter.
    await s.t.admin.query(`
      insert into "${s.t.schema}".jobs (tenant_id, queue, type, state, run_at, target)
      select 'bulk', 'bulkq', 'x', 'scheduled', now() + interval '1 day', jsonb_build_object('customer', jsonb_build_object('id', case when i = 1 then 999 else 1 end))
        from generate_series(1, ${SCAN_BUDGET + 5_000}) i`)
    // Ids made in the same millisecond are not in insert order, so find the match by its target.
    const oldest = (await s.t.admin.query(`select id from "${s.t.schema}".jobs where tenant_id = 'bulk' and target @> '{"customer":{"id":999}}'`)).rows[0].id as string
    const newer = (await s.t.admin.query(`select count(*)::int as n from "${s.t.schema}".jobs where tenant_id = 'bulk' and id > $1`, [oldest])).rows[0].n as number
    expect(newer).toBeGreaterThan(SCAN_BUDGET)
    for (const [d, tenant, first] of [[tenantDash, 'bulk', '/jobs?target=customer.id%3D999'], [operatorDash, undefined, '/jobs?target=customer.id%3D999']] as const) {
      const one = await (await get(d, first, tenant)).text()
      expect(one).toContain('id="scan-budget"')
      expect(one).not.toContain(oldest)
      const next = /id="next-page" href="([^"]+)"/.exec(one)![1]!.replaceAll('&amp;', '&')
      let body = await (await get(d, next, tenant)).text()
      // The operator's budget is shared out between the tenants, so it may take more pages.
      for (let i = 0; i < 10 && !body.includes(oldest); i++) {
        const more = /id="next-page" href="([^"]+)"/.exec(body)
        if (!more) break
        body = await (await get(d, more[1]!.replaceAll('&amp;', '&'), tenant)).text()
      }
      expect(body).toContain(oldest)
    }
  })
})

describe('failures page', () => {
  const ids: string[] = []
  beforeAll(async () => {
    // Two failures of acme and one of globex, each tenant with a message of its own.
    const { rows } = await s.t.admin.query(`
      insert into "${s.t.schema}".job_history (tenant_id, id, queue, type, state, attempt, max_attempts, created_at, run_at, finished_at, error)
      select tenant, gen_random_uuid(), 'reports', 'report', 'failed', 1, 1, now(), now(), now() - n * interval '1 second', jsonb_build_object('message', msg)
        from (values ('acme', 'acme ledger locked', 1), ('acme', 'acme ledger locked', 2), ('globex', 'globex vault sealed', 3)) v(tenant, msg, n)
      returning id`)
    ids.push(...rows.map((r) => r.id as string))
  })
  afterAll(async () => {
    failureBudget.rows = 5_000
    await s.t.admin.query(`delete from "${s.t.schema}".job_history where id = any($1::uuid[])`, [ids])
  })

  it("shows a tenant its own failures and none of another tenant's", async () => {
    const acme = await (await get(tenantDash, '/failures', 'acme')).text()
    expect(acme).toContain('acme ledger locked')
    expect(acme).not.toContain('globex vault sealed')
    const globex = await (await get(tenantDash, '/failures', 'globex')).text()
    expect(globex).toContain('globex vault sealed')
    expect(globex).not.toContain('acme ledger locked')
    expect(globex).not.toContain('failure-budget')
  })

  it('says when the groups cover only the newest failures of the window', async () => {
    failureBudget.rows = 1
    // The newest failure is acme's (1 s ago): only it is grouped, counted once.
    const op = await (await get(operatorDash, '/failures')).text()
    expect(op).toContain('id="failure-budget"')
    expect(op).toContain('Grouped over the latest 1 failures in this window')
    expect(op).toContain('acme ledger locked')
    expect(op).not.toContain('globex vault sealed')
    const acme = await (await get(tenantDash, '/failures', 'acme')).text()
    expect(acme).toContain('the latest 1 failures in this window')
    expect(/<code>acme ledger locked<\/code><\/td><td class="num">1<\/td>/.test(acme)).toBe(true)
    failureBudget.rows = 5_000
    const all = await (await get(tenantDash, '/failures', 'acme')).text()
    expect(all).not.toContain('failure-budget')
    expect(/<code>acme ledger locked<\/code><\/td><td class="num">2<\/td>/.test(all)).toBe(true)
  })
})
