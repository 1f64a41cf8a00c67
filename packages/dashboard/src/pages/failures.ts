import { html, formatTime, type Html } from '../html.js'
import { actionForm, type PageContext } from '../context.js'
import { failureBudget, failureGroupList } from '../queries/failures.js'

/** The window failures are grouped over, from the `window` parameter. */
export const FAILURE_WINDOWS: Record<string, number> = { '1h': 3_600_000, '24h': 86_400_000, '7d': 7 * 86_400_000 }

/** Failures grouped by error message, with bulk retry (failed jobs) and bulk cancel (jobs waiting to retry). */
export async function failuresPage(ctx: PageContext): Promise<Html> {
  const windowKey = FAILURE_WINDOWS[ctx.url.searchParams.get('window') ?? ''] ? ctx.url.searchParams.get('window')! : '24h'
  const since = new Date(Date.now() - FAILURE_WINDOWS[windowKey]!)
  const budget = failureBudget.rows
  const { rows: groups, historyHit, liveHit } = await ctx.read((db) => failureGroupList(db, { schema: ctx.options.schema, tenantId: ctx.tenantId, since, limit: 100, budget }))
  const n = budget.toLocaleString('en-US')
  // The counts are within what was read: say so when a part stopped at the budget.
  const cut = [historyHit ? `the latest ${n} failures in this window` : '', liveHit ? `the latest ${n} jobs waiting for a retry` : ''].filter((x) => x !== '')
  return html`<p>Window: ${Object.keys(FAILURE_WINDOWS).map((k) => (k === windowKey ? html`<b>${k}</b> ` : html`<a href="${ctx.href('/failures', { window: k })}">${k}</a> `))}</p>
${cut.length > 0 ? html`<p class="muted" id="failure-budget">Grouped over ${cut.join(' and ')}: the counts are within those, older ones are left out.</p>` : ''}
<table id="failures"><thead><tr><th>error message</th><th class="num">failed</th><th class="num">waiting to retry</th>${ctx.tenantId === undefined ? html`<th class="num">tenants</th>` : ''}
<th>queues</th><th>last</th><th></th></tr></thead><tbody>
${groups.length === 0 ? html`<tr><td colspan="7" class="muted">no failures in this window</td></tr>` : ''}
${groups.map((g) => {
  const f = { message: g.message, window: windowKey }
  return html`<tr><td><code>${g.message || '(no message)'}</code></td><td class="num">${g.failed}</td><td class="num">${g.retrying}</td>
${ctx.tenantId === undefined ? html`<td class="num">${g.tenants}</td>` : ''}<td>${g.queues.join(', ')}</td><td>${formatTime(g.last_at)}</td>
<td>${g.failed > 0 ? actionForm(ctx, 'failures.retry', 'Retry all', f, { confirm: 'Push the failed jobs of this group again (those not retried yet)?' }) : ''}
${g.retrying > 0 ? actionForm(ctx, 'failures.cancel', 'Cancel waiting', f, { danger: true, confirm: `Cancel the jobs waiting to retry after this error?` }) : ''}</td></tr>`
})}</tbody></table>
<p class="muted">Retry all pushes each failed job of the group again as a new job, once (a job retried already is left out); cancel moves jobs waiting for a retry with this error to history. At most 1,000 jobs per click.</p>`
}
