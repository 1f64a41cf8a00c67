import { html, formatMs, formatTime, type Html } from '../html.js'
import { actionForm, canAct, type PageContext } from '../context.js'
import { scheduleList } from '../queries/schedules.js'

const LIMIT = 500

/** Schedules: next runs first, with pause/resume and run now. */
export async function schedulesPage(ctx: PageContext): Promise<Html> {
  const rows = await ctx.read((db) => scheduleList(db, { schema: ctx.options.schema, tenantId: ctx.tenantId, limit: LIMIT }))
  const operator = ctx.tenantId === undefined
  return html`<table id="schedules"><thead><tr>${operator ? html`<th>tenant</th>` : ''}<th>key</th><th>queue</th><th>type</th><th>every / cron</th>
<th>next run</th><th>last run</th><th>state</th>${canAct(ctx) ? html`<th></th>` : ''}</tr></thead><tbody>
${rows.length === 0 ? html`<tr><td colspan="9" class="muted">no schedules</td></tr>` : ''}
${rows.map((s) => {
  const f = { tenant: s.tenant_id, key: s.key }
  return html`<tr data-key="${s.key}">${operator ? html`<td>${s.tenant_id}</td>` : ''}<td>${s.key}</td><td>${s.queue}</td><td>${s.type}</td>
<td>${s.cron ? html`<code>${s.cron}</code> ${s.timezone}` : `every ${formatMs(Number(s.every_ms))}`}</td>
<td>${s.paused ? '-' : formatTime(s.next_run_at)}</td><td>${formatTime(s.last_run_at)}</td><td class="schedule-state">${s.paused ? html`<span class="state held">paused</span>` : 'active'}</td>
${canAct(ctx) ? html`<td>${s.paused ? actionForm(ctx, 'schedule.resume', 'Resume', f) : actionForm(ctx, 'schedule.pause', 'Pause', f)} ${actionForm(ctx, 'schedule.run', 'Run now', f)}</td>` : ''}</tr>`
})}</tbody></table>
<p class="muted">Run now pushes one job from the schedule's template and leaves its next run as it was.</p>`
}
