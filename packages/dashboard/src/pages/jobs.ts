import { PgQueueValidationError, type HistoryState, type JobState } from '@pgqueue/core/internal'
import { html, formatTime, type Html } from '../html.js'
import { jobHref, type PageContext } from '../context.js'
import { SCAN_BUDGET, jobListHistory, jobListLive, type JobFilter, type JobListPage } from '../queries/jobs.js'

const LIVE: JobState[] = ['pending', 'held', 'scheduled', 'running']
const FINISHED: HistoryState[] = ['completed', 'failed', 'cancelled']
const PAGE = 50

/**
 * A target filter from the form: `path=value` pairs separated by '&' or new lines, where the path is
 * dotted (customer.id=7); values that parse as JSON are compared as JSON (7, true, "x"), others as text.
 * Turned into one object the target must contain.
 */
export function parseTargetFilter(text: string): Record<string, unknown> | undefined {
  const out: Record<string, unknown> = {}
  let any = false
  for (const part of text.split(/[\n&]/).map((s) => s.trim()).filter(Boolean)) {
    const eq = part.indexOf('=')
    if (eq <= 0) throw new PgQueueValidationError('target', 'expected path=value, e.g. customer.id=7', part)
    const path = part.slice(0, eq).trim().split('.')
    if (path.some((k) => k === '' || k === '__proto__')) throw new PgQueueValidationError('target', 'a path is dotted names, e.g. customer.id', part)
    const rawValue = part.slice(eq + 1).trim()
    let value: unknown
    try {
      value = JSON.parse(rawValue)
    } catch {
      value = rawValue
    }
    let node = out
    path.slice(0, -1).forEach((k) => {
      if (typeof node[k] !== 'object' || node[k] === null) node[k] = {}
      node = node[k] as Record<string, unknown>
    })
    node[path[path.length - 1]!] = value
    any = true
  }
  return any ? out : undefined
}

function parseDate(field: string, v: string | null): Date | undefined {
  if (v === null || v.trim() === '') return undefined
  // Times without a zone are UTC, like every time the dashboard shows.
  const text = v.trim().replace(' ', 'T')
  const d = new Date(/T\d\d:\d\d(:\d\d(\.\d+)?)?$/.test(text) ? `${text}Z` : text)
  if (Number.isNaN(d.getTime())) throw new PgQueueValidationError(field, 'must be a date such as 2026-11-30T12:00', v)
  return d
}

function cursorOf(at: NonNullable<JobListPage['next']>, finished: boolean): string {
  return Buffer.from(JSON.stringify(finished ? [at.finishedUs, at.id] : [at.id])).toString('base64url')
}

function decodeCursor(c: string | null): string[] | undefined {
  if (c === null || c === '') return undefined
  try {
    const v = JSON.parse(Buffer.from(c, 'base64url').toString('utf8'))
    if (Array.isArray(v) && v.every((x) => typeof x === 'string' && /^[0-9a-f-]{1,40}$/i.test(x))) return v
  } catch {
    // fall through
  }
  throw new PgQueueValidationError('cursor', 'is not a cursor of this list', c)
}

/** Jobs: filters by state, queue, type, time range and target fields; keyset paging. */
export async function jobsPage(ctx: PageContext): Promise<Html> {
  const q = ctx.url.searchParams
  const state = q.get('state') ?? 'live'
  const finished = state === 'finished' || (FINISHED as string[]).includes(state)
  const text = (k: string) => (q.get(k) ?? '').trim() || undefined
  const targetText = q.get('target') ?? ''
  const tenantFilter = ctx.tenantId ?? text('tenant')
  const filter: JobFilter = {
    schema: ctx.options.schema,
    ...(tenantFilter !== undefined ? { tenantId: tenantFilter } : {}),
    ...(text('queue') ? { queue: text('queue')! } : {}),
    ...(text('type') ? { type: text('type')! } : {}),
    ...(parseDate('since', q.get('since')) ? { since: parseDate('since', q.get('since'))! } : {}),
    ...(parseDate('until', q.get('until')) ? { until: parseDate('until', q.get('until'))! } : {}),
    ...(parseTargetFilter(targetText) ? { targetContains: parseTargetFilter(targetText) } : {}),
    limit: PAGE,
  }
  // The operator's history over every tenant reads the last day unless told otherwise: each tenant's
  // newest rows are probed per history partition, so the window bounds the partitions probed.
  const defaultWindow = finished && filter.tenantId === undefined && filter.since === undefined
  if (defaultWindow) filter.since = new Date(Date.now() - 86_400_000)
  const cursor = decodeCursor(q.get('cursor'))
  const { rows: page, next: nextAt, budgetHit } = await ctx.read((db) =>
    finished
      ? jobListHistory(db, {
          ...filter,
          ...(state !== 'finished' ? { states: [state as HistoryState] } : {}),
          ...(cursor && cursor.length === 2 ? { after: { finishedUs: cursor[0]!, id: cursor[1]! } } : {}),
        })
      : jobListLive(db, { ...filter, ...(state !== 'live' ? { states: [state as JobState] } : {}), ...(cursor && cursor.length === 1 ? { beforeId: cursor[0]! } : {}) }),
  )
  const next = nextAt ? cursorOf(nextAt, finished) : undefined
  const keep = Object.fromEntries([...q.entries()].filter(([k]) => k !== 'cursor' && k !== 'done' && k !== 'error'))
  const operator = ctx.tenantId === undefined
  const opt = (v: string, label: string) => html`<option value="${v}"${v === state ? html` selected` : ''}>${label}</option>`
  return html`<form class="filters" method="get" action="${ctx.href('/jobs')}">
<label>state <select name="state">${opt('live', 'all live')}${LIVE.map((s) => opt(s, s))}${opt('finished', 'all finished')}${FINISHED.map((s) => opt(s, s))}</select></label>
${operator ? html`<label>tenant <input name="tenant" value="${q.get('tenant') ?? ''}" size="10"></label>` : ''}
<label>queue <input name="queue" value="${q.get('queue') ?? ''}" size="12"></label>
<label>type <input name="type" value="${q.get('type') ?? ''}" size="12"></label>
<label>${finished ? 'finished' : 'created'} since <input name="since" value="${q.get('since') ?? ''}" placeholder="2026-11-30T12:00 (UTC)" size="18"></label>
<label>until <input name="until" value="${q.get('until') ?? ''}" size="16"></label>
<label>target <input name="target" value="${targetText}" placeholder="customer.id=7" size="22"></label>
<button type="submit">Filter</button></form>
${defaultWindow ? html`<p class="muted">Finished in the last 24 hours; set <i>since</i> or a tenant for more.</p>` : ''}
${budgetHit ? html`<p class="muted" id="scan-budget">Read ${SCAN_BUDGET.toLocaleString('en-US')} jobs${operator ? ' (shared between the tenants)' : ''} for this page and stopped: the next page goes on with older jobs.</p>` : ''}
<table id="jobs"><thead><tr>${operator ? html`<th>tenant</th>` : ''}<th>id</th><th>queue</th><th>type</th><th>state</th><th class="num">attempt</th><th>target</th>
<th>${finished ? 'finished' : 'run at'}</th><th>error</th></tr></thead><tbody>
${page.length === 0 ? html`<tr><td colspan="9" class="muted">no jobs match</td></tr>` : ''}
${page.map((r) => html`<tr>${operator ? html`<td>${r.tenant_id}</td>` : ''}<td><a href="${jobHref(ctx, r.tenant_id, r.id)}"><code>${r.id}</code></a></td>
<td>${r.queue}</td><td>${r.type}</td><td><span class="state ${r.state}">${r.state}</span></td><td class="num">${r.attempt}/${r.max_attempts}</td>
<td><code>${r.target === null ? '' : truncate(JSON.stringify(r.target), 80)}</code></td><td>${formatTime(finished ? r.finished_at : r.run_at)}</td>
<td>${errorMessage(r.error)}</td></tr>`)}
</tbody></table>
<div class="pager">${q.get('cursor') ? html`<a href="${ctx.href('/jobs', keep)}">first page</a> ` : ''}${next ? html`<a id="next-page" href="${ctx.href('/jobs', { ...keep, cursor: next })}">next page</a>` : ''}</div>`
}

export function errorMessage(e: unknown): string {
  if (e === null || e === undefined) return ''
  if (typeof e === 'object' && typeof (e as { message?: unknown }).message === 'string') return truncate((e as { message: string }).message, 120)
  return truncate(JSON.stringify(e), 120)
}

function truncate(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, n)}…`
}
