import type { HistogramPoint, QueueStats, Stats } from '@pgqueue/stats'
import { html, raw, formatMs, formatTime, type Html } from '../html.js'
import type { PageContext } from '../context.js'
import { historyWaitByTenant } from '../queries/latency.js'

const RANGES = { '1h': { ms: 3_600_000, bucket: 'minute' as const }, '24h': { ms: 86_400_000, bucket: 'hour' as const }, '7d': { ms: 7 * 86_400_000, bucket: 'day' as const } }
const BUCKET_MS = { minute: 60_000, hour: 3_600_000, day: 86_400_000 }

/** Totals and per-queue counts, the live part of the overview (what the shared refresh loads). */
export async function liveSnapshot(stats: Stats, tenantId: string | undefined): Promise<Record<string, number | string | null>> {
  return liveSnapshotOf(tenantId === undefined ? await stats.queues() : await stats.forTenant(tenantId).queues())
}

function liveSnapshotOf(rows: QueueStats[]): Record<string, number | string | null> {
  const out: Record<string, number | string | null> = { at: new Date().toISOString() }
  let pending = 0, running = 0, scheduled = 0, failed = 0
  for (const r of rows) {
    pending += r.pending
    running += r.running
    scheduled += r.scheduled
    failed += r.failedLast24h
    out[`q:${r.queue}:pending`] = r.pending
    out[`q:${r.queue}:running`] = r.running
    out[`q:${r.queue}:scheduled`] = r.scheduled
    out[`q:${r.queue}:age`] = formatMs(r.oldestPendingAgeMs)
  }
  Object.assign(out, { 't:pending': pending, 't:running': running, 't:scheduled': scheduled, 't:failed24h': failed })
  return out
}

/** Overview: live totals, throughput and failures over time, depth and age per queue, wait per tenant. */
export async function overviewPage(ctx: PageContext): Promise<Html> {
  const rangeKey = (ctx.url.searchParams.get('range') ?? '24h') as keyof typeof RANGES
  const range = RANGES[rangeKey] ?? RANGES['24h']
  const step = BUCKET_MS[range.bucket]
  const to = new Date(Math.ceil(Date.now() / step) * step)
  const from = new Date(to.getTime() - range.ms)
  const scoped = ctx.tenantId === undefined ? ctx.stats : ctx.stats.forTenant(ctx.tenantId)
  const waitSince = new Date(Date.now() - 3_600_000)
  const [queues, histogram, latency, waits] = await Promise.all([
    scoped.queues(),
    scoped.histogram({ from, to, bucket: range.bucket }),
    scoped.latency({ window: 3_600_000 }),
    ctx.read((db) => historyWaitByTenant(db, { schema: ctx.options.schema, tenantId: ctx.tenantId, since: waitSince, limit: 50 })),
  ])
  const live = liveSnapshotOf(queues)
  const lat = new Map(latency.map((l) => [l.queue, l]))
  const card = (key: string, label: string) => html`<div class="card"><div class="n" data-live="${key}">${live[key]}</div><div class="l">${label}</div></div>`
  return html`
<div class="cards">${card('t:pending', 'pending')}${card('t:running', 'running')}${card('t:scheduled', 'scheduled')}${card('t:failed24h', 'failed, last 24 h')}</div>
<h2>Finished jobs per ${range.bucket} <span class="muted">(${Object.keys(RANGES).map((k) => html` <a href="${ctx.href('/', { range: k })}">${k}</a>`)})</span></h2>
${chart(histogram)}
<h2>Queues</h2>
<table><thead><tr><th>queue</th><th class="num">pending</th><th class="num">running</th><th class="num">scheduled</th><th class="num">oldest pending</th>
<th class="num">completed 24 h</th><th class="num">failed 24 h</th><th class="num">wait p50 / p95 (1 h)</th><th class="num">run p50 / p95 (1 h)</th></tr></thead><tbody>
${queues.length === 0 ? html`<tr><td colspan="9" class="muted">no jobs yet</td></tr>` : ''}
${queues.map((q) => {
  const l = lat.get(q.queue)
  return html`<tr><td><a href="${ctx.href('/jobs', { queue: q.queue })}">${q.queue}</a></td>
<td class="num" data-live="q:${q.queue}:pending">${q.pending}</td><td class="num" data-live="q:${q.queue}:running">${q.running}</td>
<td class="num" data-live="q:${q.queue}:scheduled">${q.scheduled}</td><td class="num" data-live="q:${q.queue}:age">${formatMs(q.oldestPendingAgeMs)}</td>
<td class="num">${q.completed}</td><td class="num">${q.failed}</td>
<td class="num">${l ? `${formatMs(l.waitMs.p50)} / ${formatMs(l.waitMs.p95)}` : '-'}</td><td class="num">${l ? `${formatMs(l.runMs.p50)} / ${formatMs(l.runMs.p95)}` : '-'}</td></tr>`
})}</tbody></table>
${queues.some((q) => q.liveCountsAt) ? html`<p class="muted">Live counts from Maintenance's snapshot of ${formatTime(queues.find((q) => q.liveCountsAt)!.liveCountsAt)}.</p>` : ''}
<h2>Wait time per tenant (jobs finished in the last hour)</h2>
<p class="muted">Due to started. One tenant far above the others is being starved; equal figures mean a fair share.</p>
<table id="tenant-waits"><thead><tr><th>tenant</th><th class="num">jobs</th><th class="num">p50</th><th class="num">p95</th><th class="num">p99</th></tr></thead><tbody>
${waits.length === 0 ? html`<tr><td colspan="5" class="muted">no finished jobs in the last hour</td></tr>` : ''}
${waits.map((w) => html`<tr><td>${w.tenant_id}</td><td class="num">${w.count}</td><td class="num">${formatMs(w.p50)}</td><td class="num">${formatMs(w.p95)}</td><td class="num">${formatMs(w.p99)}</td></tr>`)}
</tbody></table>`
}

/** Completed (green) and failed (red) per bucket as an inline SVG bar chart. */
function chart(points: HistogramPoint[]): Html {
  const w = 1200, h = 180, pad = 24
  const max = Math.max(1, ...points.map((p) => p.completed + p.failed + p.cancelled))
  const bw = (w - pad * 2) / Math.max(1, points.length)
  const y = (v: number) => (v / max) * (h - pad * 2)
  const bars = points.map((p, i) => {
    const x = pad + i * bw
    const hc = y(p.completed), hf = y(p.failed), hx = y(p.cancelled)
    const title = `${formatTimeShort(p.at)}: ${p.completed} completed, ${p.failed} failed, ${p.cancelled} cancelled`
    return html`<g><title>${title}</title><rect x="${x.toFixed(1)}" y="${(h - pad - hc).toFixed(1)}" width="${Math.max(1, bw - 1).toFixed(1)}" height="${hc.toFixed(1)}" fill="var(--ok)"/>
<rect x="${x.toFixed(1)}" y="${(h - pad - hc - hf).toFixed(1)}" width="${Math.max(1, bw - 1).toFixed(1)}" height="${hf.toFixed(1)}" fill="var(--bad)"/>
<rect x="${x.toFixed(1)}" y="${(h - pad - hc - hf - hx).toFixed(1)}" width="${Math.max(1, bw - 1).toFixed(1)}" height="${hx.toFixed(1)}" fill="var(--muted)"/></g>`
  })
  const first = points[0], last = points[points.length - 1]
  return html`<svg class="chart" id="throughput" viewBox="0 0 ${w} ${h}" width="100%" role="img" aria-label="finished jobs over time">
<text x="${pad}" y="14" font-size="11" fill="currentColor">max ${max}</text>${bars}
<text x="${pad}" y="${h - 6}" font-size="11" fill="currentColor">${first ? formatTimeShort(first.at) : ''}</text>
<text x="${w - pad}" y="${h - 6}" font-size="11" text-anchor="end" fill="currentColor">${last ? formatTimeShort(last.at) : ''}</text>${raw('')}</svg>
<div class="muted"><span style="color:var(--ok)">■</span> completed <span style="color:var(--bad)">■</span> failed <span class="muted">■</span> cancelled</div>`
}

function formatTimeShort(d: Date): string {
  return d.toISOString().slice(0, 16).replace('T', ' ')
}
