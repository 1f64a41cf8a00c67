import { decodeBody } from '@pgqueue/core/internal'
import { html, formatTime, type Html } from '../html.js'
import { actionForm, jobHref, type PageContext } from '../context.js'
import { jobGetHistory, jobGetLive } from '../queries/jobs.js'
import { flowGraph } from '../queries/flows.js'
import { FLOW_GRAPH_CAP, flowSection } from './flow-graph.js'

/** One job, live or finished, or null when this scope has no such job (a 404, whoever owns the id). */
export async function jobPage(ctx: PageContext, id: string): Promise<Html | null> {
  const tenantId = ctx.tenantId ?? (ctx.url.searchParams.get('tenant') || undefined)
  const p = { schema: ctx.options.schema, ...(tenantId !== undefined ? { tenantId } : {}), id }
  const found = await ctx.read(async (db) => {
    const live = await jobGetLive(db, p)
    const hist = live ? undefined : await jobGetHistory(db, p)
    const job = live ?? hist
    // The flow is read as the job's own tenant, in the same transaction (tenant mode: under RLS).
    const flow = job?.flow_id
      ? await flowGraph(db, { schema: ctx.options.schema, tenantId: job.tenant_id, flowId: job.flow_id, jobId: job.id, cap: FLOW_GRAPH_CAP })
      : undefined
    return { live, hist, flow }
  })
  const { live, hist, flow } = found
  const job = live ?? hist
  if (!job) return null
  const f = { tenant: job.tenant_id, id: job.id }
  const actions = live
    ? live.state === 'running'
      ? actionForm(ctx, 'job.cancel', 'Request cancel', f, { danger: true, confirm: 'Cancel this running job?' })
      : actionForm(ctx, 'job.cancel', 'Cancel', f, { danger: true, confirm: 'Cancel this job?' })
    : hist!.state === 'failed' || hist!.state === 'cancelled'
      ? actionForm(ctx, 'job.retry', 'Retry', f)
      : html``
  const error = live ? live.last_error : hist!.error
  return html`<p>${actions}</p>
<dl id="job">
<dt>id</dt><dd><code>${job.id}</code></dd><dt>tenant</dt><dd>${job.tenant_id}</dd><dt>queue</dt><dd>${job.queue}</dd><dt>type</dt><dd>${job.type}</dd>
<dt>key</dt><dd>${job.key ?? '-'}</dd><dt>state</dt><dd><span class="state ${job.state}" id="job-state">${job.state}</span>${live?.cancel_requested ? ' (cancel requested)' : ''}</dd>
<dt>attempts</dt><dd>${job.attempt} of ${job.max_attempts}</dd><dt>priority</dt><dd>${job.priority}</dd>
<dt>created</dt><dd>${formatTime(job.created_at)}</dd><dt>run at</dt><dd>${formatTime(job.run_at)}</dd><dt>started</dt><dd>${formatTime(job.started_at)}</dd>
${hist ? html`<dt>finished</dt><dd>${formatTime(hist.finished_at)}</dd><dt>worker</dt><dd>${hist.worker_id ?? '-'}</dd>` : ''}
${live?.lease_expires_at ? html`<dt>lease until</dt><dd>${formatTime(live.lease_expires_at)}</dd>` : ''}
${job.retry_of ? html`<dt>retry of</dt><dd><a href="${jobHref(ctx, job.tenant_id, job.retry_of)}"><code>${job.retry_of}</code></a></dd>` : ''}
${job.schedule_id ? html`<dt>schedule</dt><dd><code>${job.schedule_id}</code></dd>` : ''}
</dl>
<h2>Payload <span class="muted">${job.payload_type ?? ''}</span></h2>${body(job.payload, job.payload_type)}
<h2>Target</h2><pre id="target">${job.target === null ? '-' : JSON.stringify(job.target, null, 2)}</pre>
${hist ? html`<h2>Result <span class="muted">${hist.result_type ?? ''}</span></h2>${body(hist.result, hist.result_type)}` : ''}
${error ? html`<h2>${live ? 'Last error' : 'Error'}</h2>${errorBlock(error)}` : ''}
${flow && flow.nodes.length > 0 ? flowSection(ctx, job.tenant_id, job.flow_id!, job.id, flow) : ''}`
}

/** A payload or result shown by its type: JSON pretty-printed, text as text, other bytes as hex. */
function body(bytes: Buffer | null, type: string | null): Html {
  if (bytes === null) return html`<pre class="muted">none</pre>`
  const v = decodeBody(bytes, type)
  if (Buffer.isBuffer(v)) {
    const hex = v.subarray(0, 512).toString('hex').replace(/(.{2})/g, '$1 ').replace(/((?:.. ){16})/g, '$1\n')
    return html`<pre>${v.length} bytes${v.length > 512 ? ', first 512' : ''}\n${hex}</pre>`
  }
  return html`<pre class="payload">${typeof v === 'string' ? v : JSON.stringify(v, null, 2)}</pre>`
}

function errorBlock(e: unknown): Html {
  if (typeof e !== 'object' || e === null) return html`<pre>${JSON.stringify(e)}</pre>`
  const { message, name, code, attempt, at, stack, ...rest } = e as Record<string, unknown>
  return html`<dl id="error"><dt>message</dt><dd>${String(message ?? '')}</dd>${name ? html`<dt>name</dt><dd>${String(name)}</dd>` : ''}
${code ? html`<dt>code</dt><dd>${String(code)}</dd>` : ''}${attempt ? html`<dt>attempt</dt><dd>${String(attempt)}</dd>` : ''}${at ? html`<dt>at</dt><dd>${String(at)}</dd>` : ''}</dl>
${stack ? html`<pre class="stack">${String(stack)}</pre>` : ''}${Object.keys(rest).length > 0 ? html`<pre>${JSON.stringify(rest, null, 2)}</pre>` : ''}`
}
