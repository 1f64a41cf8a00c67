import {
  PgQueueError,
  PgQueueNotFoundError,
  PgQueueValidationError,
  TenantKey,
  connect,
  isUuid,
  validateTenantId,
  withTenantTransaction,
  jitOffSetLocal,
  type Connection,
  type Database,
} from '@pgqueue/core/internal'
import { createProducer, type Producer } from '@pgqueue/producer'
import { Stats } from '@pgqueue/stats'
import type { Kysely } from 'kysely'
import { ACTIONS, actionTenant } from './actions.js'
import { CSS, JS } from './assets.js'
import type { PageContext } from './context.js'
import { CsrfTokens, sameOrigin } from './csrf.js'
import { html, type Html } from './html.js'
import { layout } from './layout.js'
import { LiveHub } from './live-hub.js'
import { resolveDashboardOptions, type DashboardOptions, type ResolvedDashboardOptions } from './options.js'
import { failuresPage } from './pages/failures.js'
import { jobPage } from './pages/job.js'
import { jobsPage } from './pages/jobs.js'
import { liveSnapshot, overviewPage } from './pages/overview.js'
import { queuesPage } from './pages/queues.js'
import { schedulesPage } from './pages/schedules.js'

/** A mounted dashboard: a Fetch API handler and what it holds open. */
export interface Dashboard {
  /** Answers one request (Request in, Response out): mount it in Hono, Bun.serve or Node (see toNodeHandler). */
  fetch(request: Request): Promise<Response>
  /** The options in force, defaults filled in. */
  readonly options: ResolvedDashboardOptions
  /** Ends live streams and the pools this dashboard opened (pools you passed stay open). */
  close(): Promise<void>
  /** @internal The shared live refresh (tests count its loads). */
  readonly live: LiveHub
}

const PAGES: Record<string, (ctx: PageContext) => Promise<Html>> = {
  '/': overviewPage,
  '/queues': queuesPage,
  '/jobs': jobsPage,
  '/schedules': schedulesPage,
  '/failures': failuresPage,
}
const TITLES: Record<string, string> = { '/': 'Overview', '/queues': 'Queues', '/jobs': 'Jobs', '/schedules': 'Schedules', '/failures': 'Failures' }
const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
  'cache-control': 'no-store',
}

/**
 * Creates the dashboard handler. Tenant mode reads and acts on a user-role login as the tenant the
 * resolver returns for each request, so row-level security scopes every query and no id or URL of another
 * tenant reaches anything. Operator mode reads every tenant on a worker-role login, and acts through
 * `actionConnection` (a user-role login) as the tenant of the row acted on.
 */
export function createDashboard(options: DashboardOptions): Dashboard {
  const opts = resolveDashboardOptions(options)
  const key = TenantKey.resolveOptional(options.tenantSecret)
  if (opts.mode === 'tenant' && key === undefined) {
    throw new PgQueueValidationError('tenantSecret', 'is required in tenant mode (or PGQUEUE_TENANT_SECRET): the user role signs in as each tenant', undefined)
  }
  const readConn: Connection = connect(options.connection, { max: opts.poolSize, applicationName: 'pgqueue-dashboard' })
  const actionConn: Connection | undefined =
    opts.readOnly ? undefined : opts.mode === 'tenant' ? readConn : connect(options.actionConnection!, { max: 2, applicationName: 'pgqueue-dashboard' })
  const secret = options.tenantSecret === undefined ? {} : { tenantSecret: options.tenantSecret }
  const stats = Stats.create(readConn.pool, { schema: opts.schema, ...secret })
  const producer: Producer | undefined = actionConn ? createProducer(actionConn.pool, { schema: opts.schema, ...secret }) : undefined
  const csrf = new CsrfTokens(options.csrfSecret)
  const live = new LiveHub(opts.refreshMs, (tenantId) => liveSnapshot(stats, tenantId), (err) => options.onError?.(err))
  const base = opts.basePath

  // JIT off: the pages' reads are short, but over many history partitions the planner's estimates pass
  // jit_above_cost, and compiling took 200 ms of a 600 ms failures query at 10,000,000 history rows.
  const jitOff = <T>(fn: (db: Kysely<Database>) => Promise<T>) => async (db: Kysely<Database>) => {
    await jitOffSetLocal(db)
    return fn(db)
  }
  const read = <T>(tenantId: string | undefined, fn: (db: Kysely<Database>) => Promise<T>): Promise<T> =>
    tenantId === undefined
      ? readConn.db.transaction().setAccessMode('read only').execute(jitOff(fn))
      : withTenantTransaction(readConn.db, key, tenantId, jitOff(fn))

  const href = (path: string, query: Record<string, string | undefined> = {}) => {
    const q = new URLSearchParams(Object.entries(query).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== '')).toString()
    return `${base}${path === '/' && base !== '' ? '' : path}${q ? `?${q}` : ''}` || '/'
  }

  async function scopeOf(request: Request): Promise<string | undefined | null> {
    if (opts.mode === 'operator') return undefined
    const t = await options.resolveTenant!(request)
    if (t === null || t === undefined || t === '') return null
    return validateTenantId(t)
  }

  async function handle(request: Request): Promise<Response> {
    const url = new URL(request.url)
    if (base !== '' && url.pathname !== base && !url.pathname.startsWith(`${base}/`)) return text(404, 'not found')
    const path = url.pathname.slice(base.length) || '/'
    if (request.method === 'GET' && path === '/assets/app.css') return asset(CSS, 'text/css; charset=utf-8')
    if (request.method === 'GET' && path === '/assets/app.js') return asset(JS, 'text/javascript; charset=utf-8')

    const tenantId = await scopeOf(request)
    if (tenantId === null) return text(403, 'no tenant for this request')
    const scope = tenantId ?? '\u0000operator'
    const ctx: PageContext = { options: opts, tenantId, read: (fn) => read(tenantId, fn), stats, producer, url, csrf: csrf.token(scope), href }

    if (request.method === 'GET' && path === '/events') return events(request, tenantId)
    if (request.method === 'POST' && path.startsWith('/actions/')) return action(request, ctx, scope, decodeURIComponent(path.slice('/actions/'.length)))
    if ((request.method !== 'GET' && request.method !== 'HEAD') || path.startsWith('/actions/')) return text(405, 'method not allowed')

    const page = PAGES[path]
    try {
      if (page) return htmlResponse(200, layout(ctx, TITLES[path]!, await page(ctx), path))
      const m = /^\/jobs\/([^/]+)$/.exec(path)
      if (m) {
        const id = decodeURIComponent(m[1]!)
        const body = isUuid(id) ? await jobPage(ctx, id) : null
        if (body === null) return htmlResponse(404, layout(ctx, 'Job not found', html`<p>No job <code>${id}</code> here.</p>`, '/jobs'))
        return htmlResponse(200, layout(ctx, `Job ${id}`, body, '/jobs'))
      }
    } catch (err) {
      if (err instanceof PgQueueValidationError) return htmlResponse(400, layout(ctx, 'Bad request', html`<p class="flash err">${err.message}</p>`, path))
      throw err
    }
    return htmlResponse(404, layout(ctx, 'Not found', html`<p>No such page.</p>`, ''))
  }

  async function action(request: Request, ctx: PageContext, scope: string, name: string): Promise<Response> {
    if (ctx.options.readOnly || producer === undefined) return text(403, 'this dashboard is read-only')
    const spec = Object.hasOwn(ACTIONS, name) ? ACTIONS[name] : undefined
    if (!spec) return text(404, 'no such action')
    if (!sameOrigin(request)) return text(403, 'cross-site request refused')
    const form = await request.formData().catch(() => null)
    if (form === null || !csrf.check(scope, typeof form.get('csrf') === 'string' ? (form.get('csrf') as string) : null)) return text(403, 'invalid or missing CSRF token')
    const back = safeReturn(form.get('return'))
    let tenant: string
    let params: Record<string, unknown>
    try {
      tenant = actionTenant(ctx, name, form)
      params = spec.params(form)
    } catch (err) {
      if (err instanceof PgQueueError) return redirect(back, { error: err.message }, 400)
      throw err
    }
    try {
      await options.beforeAction?.({ name, tenantId: tenant, params, request })
    } catch (err) {
      return redirect(back, { error: err instanceof Error ? err.message : String(err) }, 403)
    }
    try {
      const done = await spec.run(ctx, producer, tenant, params)
      return typeof done === 'string' ? redirect(back, { done }) : redirect(done.goTo, { done: done.message })
    } catch (err) {
      if (err instanceof PgQueueNotFoundError) return redirect(back, { error: 'Not found.' }, 404)
      if (err instanceof PgQueueError) return redirect(back, { error: err.message }, 400)
      throw err
    }
  }

  /** Where to go after an action: a path under the mount point only (never another site). */
  function safeReturn(v: unknown): string {
    if (typeof v === 'string' && v.startsWith(base === '' ? '/' : `${base}`) && !v.startsWith('//') && !v.includes('\\')) return v
    return href('/')
  }

  function redirect(to: string, flash: Record<string, string>, status = 303): Response {
    const u = new URL(to, 'http://x')
    u.searchParams.delete('done')
    u.searchParams.delete('error')
    for (const [k, v] of Object.entries(flash)) u.searchParams.set(k, v)
    const location = u.pathname + u.search
    // A failed action answers with its status and a link back; browsers show the page and its message.
    if (status !== 303) return htmlResponse(status, html`<!doctype html><meta charset="utf-8"><p>${flash.error ?? ''}</p><p><a href="${location}">back</a></p>`)
    return new Response(null, { status, headers: { location, ...SECURITY_HEADERS } })
  }

  function events(request: Request, tenantId: string | undefined): Response {
    const enc = new TextEncoder()
    let stop = () => {}
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        const send = (data: string) => {
          try {
            controller.enqueue(enc.encode(`data: ${data}\n\n`))
          } catch {
            stop()
          }
        }
        controller.enqueue(enc.encode(`retry: ${Math.max(1_000, opts.refreshMs)}\n\n`))
        const unsubscribe = live.subscribe(tenantId, send)
        stop = () => {
          unsubscribe()
          request.signal.removeEventListener('abort', stop)
          try {
            controller.close()
          } catch {
            // already closed
          }
        }
        request.signal.addEventListener('abort', stop)
      },
      cancel() {
        stop()
      },
    })
    return new Response(stream, { headers: { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' } })
  }

  return {
    options: opts,
    live,
    async fetch(request: Request): Promise<Response> {
      try {
        return await handle(request)
      } catch (err) {
        if (err instanceof PgQueueValidationError) return text(400, err.message)
        options.onError?.(err)
        return text(500, 'internal error')
      }
    },
    async close() {
      live.close()
      await producer?.close()
      await stats.close()
      if (actionConn && actionConn !== readConn) await actionConn.close()
      await readConn.close()
    },
  }
}

function text(status: number, body: string): Response {
  return new Response(body, { status, headers: { 'content-type': 'text/plain; charset=utf-8', ...SECURITY_HEADERS } })
}

function htmlResponse(status: number, body: Html): Response {
  return new Response(body.value, { status, headers: { 'content-type': 'text/html; charset=utf-8', ...SECURITY_HEADERS } })
}

function asset(body: string, type: string): Response {
  return new Response(body, { headers: { 'content-type': type, 'cache-control': 'public, max-age=3600', 'x-content-type-options': 'nosniff' } })
}
