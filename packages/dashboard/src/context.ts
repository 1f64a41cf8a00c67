import type { Database } from '@pgqueue/core/internal'
import type { Producer } from '@pgqueue/producer'
import type { Stats } from '@pgqueue/stats'
import type { Kysely } from 'kysely'
import { html, raw, type Html } from './html.js'
import type { ResolvedDashboardOptions } from './options.js'

/** What a page needs for one request: its scope, a read transaction, the clients and the form helpers. */
export interface PageContext {
  options: ResolvedDashboardOptions
  /** The request's tenant in tenant mode; undefined for the operator (every tenant). */
  tenantId: string | undefined
  /** Runs reads in one transaction: signed in as the tenant (RLS), or read-only for the operator. */
  read<T>(fn: (db: Kysely<Database>) => Promise<T>): Promise<T>
  stats: Stats
  /** The clients actions go through; undefined when the dashboard is read-only. */
  producer: Producer | undefined
  url: URL
  /** The CSRF token of this scope's forms. */
  csrf: string
  /** A path under the mount point. */
  href(path: string, query?: Record<string, string | undefined>): string
}

/** Whether actions are offered on this page. */
export function canAct(ctx: PageContext): boolean {
  return !ctx.options.readOnly && ctx.producer !== undefined
}

/**
 * A one-button POST form for an action. In operator mode it names the tenant of the row; in tenant mode
 * the tenant field is ignored by the server (the resolver decides).
 */
export function actionForm(
  ctx: PageContext,
  action: string,
  label: string,
  fields: Record<string, string>,
  opts: { danger?: boolean; confirm?: string; extra?: Html } = {},
): Html {
  if (!canAct(ctx)) return html``
  const back = ctx.url.pathname + ctx.url.search
  return html`<form class="inline" method="post" action="${ctx.href(`/actions/${action}`)}"${opts.confirm ? html` data-confirm="${opts.confirm}"` : raw('')}>
<input type="hidden" name="csrf" value="${ctx.csrf}"><input type="hidden" name="return" value="${back}">${Object.entries(fields).map(
    ([k, v]) => html`<input type="hidden" name="${k}" value="${v}">`,
  )}${opts.extra ?? ''}<button type="submit" data-action="${action}"${opts.danger ? raw(' class="danger"') : raw('')}>${label}</button></form>`
}

/** A link to a job's page; operators' links carry the tenant, as ids are unique per tenant only. */
export function jobHref(ctx: PageContext, tenantId: string, id: string): string {
  return ctx.href(`/jobs/${encodeURIComponent(id)}`, ctx.tenantId === undefined ? { tenant: tenantId } : {})
}
