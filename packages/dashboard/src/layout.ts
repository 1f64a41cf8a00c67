import { html, type Html } from './html.js'
import type { PageContext } from './context.js'

const NAV: [string, string][] = [
  ['/', 'Overview'],
  ['/queues', 'Queues'],
  ['/jobs', 'Jobs'],
  ['/schedules', 'Schedules'],
  ['/failures', 'Failures'],
]

/** The page frame: header, navigation, scope, flash message, and the one script. */
export function layout(ctx: PageContext, title: string, body: Html, active: string): Html {
  const done = ctx.url.searchParams.get('done')
  const error = ctx.url.searchParams.get('error')
  const scope = ctx.tenantId === undefined ? 'operator: all tenants' : `tenant ${ctx.tenantId}`
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${title} · ${ctx.options.title}</title><link rel="stylesheet" href="${ctx.href('/assets/app.css')}"></head>
<body data-base="${ctx.options.basePath}">
<header><b>${ctx.options.title}</b><nav>${NAV.map(([path, label]) => html`<a href="${ctx.href(path)}"${path === active ? html` class="on"` : ''}>${label}</a>`)}</nav>
<span class="scope">${scope}${ctx.options.readOnly ? ' · read-only' : ''} · <span id="live">static</span></span></header>
<main>${done ? html`<div class="flash" role="status">${done}</div>` : ''}${error ? html`<div class="flash err" role="alert">${error}</div>` : ''}
<h1>${title}</h1>
${body}</main><script src="${ctx.href('/assets/app.js')}"></script></body></html>`
}
