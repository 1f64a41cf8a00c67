import { html, type Html } from '../html.js'
import { actionForm, canAct, type PageContext } from '../context.js'
import { jobCountByTenantQueue, queueSettingsList, tenantPage } from '../queries/queues.js'

// Counting reads jobs_state_idx over every live job of the page's tenants (index-only): the page's cost
// grows with the live jobs of its tenants, so it takes fewer of them.
const TENANTS_PER_PAGE = 20

/** Queues per (tenant, queue): live counts and settings, with pause/resume, cap and retry policy. */
export async function queuesPage(ctx: PageContext): Promise<Html> {
  const schema = ctx.options.schema
  const after = ctx.tenantId === undefined ? ctx.url.searchParams.get('after') ?? undefined : undefined
  const { tenants, counts, settings } = await ctx.read(async (db) => {
    // The operator's page covers a page of tenants, so its cost does not grow with the live table.
    const tenants = ctx.tenantId !== undefined ? [ctx.tenantId] : await tenantPage(db, { schema, ...(after ? { after } : {}), limit: TENANTS_PER_PAGE })
    return { tenants, counts: await jobCountByTenantQueue(db, { schema, tenantIds: tenants }), settings: await queueSettingsList(db, { schema, tenantIds: tenants }) }
  })
  const rows = new Map<string, { tenant: string; queue: string; pending: number; held: number; scheduled: number; running: number; s?: (typeof settings)[number] }>()
  const key = (t: string, q: string) => `${t}\u0000${q}`
  for (const c of counts) {
    const k = key(c.tenant_id, c.queue)
    const r = rows.get(k) ?? { tenant: c.tenant_id, queue: c.queue, pending: 0, held: 0, scheduled: 0, running: 0 }
    const n = Number(c.n)
    if (c.state === 'pending' || c.state === 'held') r.pending += n
    if (c.state === 'held') r.held = n
    if (c.state === 'scheduled') r.scheduled = n
    if (c.state === 'running') r.running = n
    rows.set(k, r)
  }
  for (const s of settings) {
    const k = key(s.tenant_id, s.queue)
    const r = rows.get(k) ?? { tenant: s.tenant_id, queue: s.queue, pending: 0, held: 0, scheduled: 0, running: 0 }
    r.s = s
    rows.set(k, r)
  }
  const list = [...rows.values()].sort((a, b) => (a.tenant === b.tenant ? (a.queue < b.queue ? -1 : 1) : a.tenant < b.tenant ? -1 : 1))
  const operator = ctx.tenantId === undefined
  return html`<table id="queues"><thead><tr>${operator ? html`<th>tenant</th>` : ''}<th>queue</th><th class="num">pending</th><th class="num">held</th>
<th class="num">scheduled</th><th class="num">running</th><th>state</th><th>concurrency cap</th><th>retry policy</th>${canAct(ctx) ? html`<th></th>` : ''}</tr></thead><tbody>
${list.length === 0 ? html`<tr><td colspan="10" class="muted">no queues yet</td></tr>` : ''}
${list.map((r) => {
  const paused = r.s?.paused === true
  const f = { tenant: r.tenant, queue: r.queue }
  const policy = r.s?.retry_policy == null ? '' : JSON.stringify(r.s.retry_policy)
  return html`<tr data-queue="${r.queue}" data-tenant="${r.tenant}">${operator ? html`<td>${r.tenant}</td>` : ''}
<td><a href="${ctx.href('/jobs', { queue: r.queue, ...(operator ? { tenant: r.tenant } : {}) })}">${r.queue}</a></td>
<td class="num">${r.pending}</td><td class="num">${r.held}</td><td class="num">${r.scheduled}</td><td class="num">${r.running}</td>
<td class="queue-state">${paused ? html`<span class="state held">paused</span>` : 'active'}</td>
<td>${r.s?.max_concurrency ?? html`<span class="muted">none</span>`}</td><td>${policy === '' ? html`<span class="muted">default</span>` : html`<code>${policy}</code>`}</td>
${canAct(ctx) ? html`<td>${paused ? actionForm(ctx, 'queue.resume', 'Resume', f) : actionForm(ctx, 'queue.pause', 'Pause', f)}
<details><summary>settings</summary>${actionForm(ctx, 'queue.configure', 'Save', f, {
    extra: html`<label>cap <input name="maxConcurrency" size="6" value="${r.s?.max_concurrency ?? ''}" placeholder="none"></label>
<label>retry policy <input name="retryPolicy" size="40" value="${policy}" placeholder='{"type":"exponential","delayMs":1000,"maxAttempts":5}'></label>`,
  })}</details></td>` : ''}</tr>`
})}</tbody></table>
${operator && tenants.length === TENANTS_PER_PAGE ? html`<p class="pager"><a id="next-tenants" href="${ctx.href('/queues', { after: tenants[tenants.length - 1] })}">next ${TENANTS_PER_PAGE} tenants</a></p>` : ''}
<p class="muted">Pausing holds the queue's waiting jobs; a Scheduler releases them after resume. A cap holds jobs beyond it the same way.</p>`
}
