import { PgQueueValidationError, isUuid, validateTenantId } from '@pgqueue/core/internal'
import type { Producer } from '@pgqueue/producer'
import { jobHref, type PageContext } from './context.js'
import { FAILURE_WINDOWS } from './pages/failures.js'
import { failureHistoryIds, failureLiveIds } from './queries/failures.js'

const BULK_LIMIT = 1_000

/** An action's name and what it needs from the form; run() returns the message shown after it. */
interface ActionSpec {
  params(form: FormData): Record<string, unknown>
  run(ctx: PageContext, producer: Producer, tenantId: string, params: Record<string, unknown>): Promise<string | { message: string; goTo: string }>
}

function field(form: FormData, name: string, max = 2_000): string {
  const v = form.get(name)
  if (typeof v !== 'string' || v === '' || v.length > max) throw new PgQueueValidationError(name, 'is missing or too long', undefined)
  return v
}

function jobId(form: FormData): string {
  const id = field(form, 'id', 64)
  if (!isUuid(id)) throw new PgQueueValidationError('id', 'must be a job id', id)
  return id
}

/** The actions the dashboard offers, each through the producer's public API. */
export const ACTIONS: Record<string, ActionSpec> = {
  'queue.pause': {
    params: (f) => ({ queue: field(f, 'queue', 200) }),
    run: async (_c, p, t, a) => (await p.queues.withTenant(t).configureQueue(a.queue as string, { paused: true }), `Queue ${a.queue} paused.`),
  },
  'queue.resume': {
    params: (f) => ({ queue: field(f, 'queue', 200) }),
    run: async (_c, p, t, a) => (await p.queues.withTenant(t).configureQueue(a.queue as string, { paused: false }), `Queue ${a.queue} resumed.`),
  },
  'queue.configure': {
    params: (f) => {
      const cap = String(f.get('maxConcurrency') ?? '').trim()
      const policy = String(f.get('retryPolicy') ?? '').trim()
      let retryPolicy: unknown = null
      if (policy !== '') {
        try {
          retryPolicy = JSON.parse(policy)
        } catch {
          throw new PgQueueValidationError('retryPolicy', 'must be JSON, e.g. {"type":"exponential","delayMs":1000,"maxAttempts":5}', policy)
        }
      }
      if (cap !== '' && !/^\d+$/.test(cap)) throw new PgQueueValidationError('maxConcurrency', 'must be a whole number or empty', cap)
      return { queue: field(f, 'queue', 200), maxConcurrency: cap === '' ? null : Number(cap), retryPolicy }
    },
    run: async (_c, p, t, a) => {
      await p.queues.withTenant(t).configureQueue(a.queue as string, { maxConcurrency: a.maxConcurrency as number | null, retryPolicy: a.retryPolicy as never })
      return `Queue ${a.queue} saved.`
    },
  },
  'job.retry': {
    params: (f) => ({ id: jobId(f) }),
    run: async (ctx, p, t, a) => {
      const pushed = await p.queues.withTenant(t).retry(a.id as string)
      return { message: `Pushed again as job ${pushed.id}.`, goTo: jobHref(ctx, t, pushed.id) }
    },
  },
  'job.cancel': {
    params: (f) => ({ id: jobId(f) }),
    run: async (_c, p, t, a) => {
      const r = await p.queues.withTenant(t).cancel(a.id as string)
      return r === 'not_found' ? 'The job had already finished.' : r === 'cancelled' ? 'Job cancelled.' : 'Cancel requested; its worker aborts it.'
    },
  },
  'schedule.pause': {
    params: (f) => ({ key: field(f, 'key', 600) }),
    run: async (_c, p, t, a) => ((await p.schedules.withTenant(t).pause(a.key as string)) ? `Schedule ${a.key} paused.` : 'No such schedule.'),
  },
  'schedule.resume': {
    params: (f) => ({ key: field(f, 'key', 600) }),
    run: async (_c, p, t, a) => ((await p.schedules.withTenant(t).resume(a.key as string)) ? `Schedule ${a.key} resumed.` : 'No such schedule.'),
  },
  'schedule.run': {
    params: (f) => ({ key: field(f, 'key', 600) }),
    run: async (_c, p, t, a) => {
      const s = await p.schedules.withTenant(t).get(a.key as string)
      if (!s) return 'No such schedule.'
      const pushed = await p.queues.withTenant(t).push({
        queue: s.queue, type: s.type, payload: s.payload, payloadType: s.payloadType, target: s.target ?? undefined, priority: s.priority,
        ...(s.retryPolicy ? { retryPolicy: s.retryPolicy } : {}),
      })
      return `Pushed job ${pushed.id} from schedule ${s.key}.`
    },
  },
  'failures.retry': {
    params: (f) => ({ message: String(f.get('message') ?? ''), window: FAILURE_WINDOWS[String(f.get('window'))] ? String(f.get('window')) : '24h' }),
    run: async (ctx, p, t, a) => {
      const since = new Date(Date.now() - FAILURE_WINDOWS[a.window as string]!)
      const ids = await ctx.read((db) => failureHistoryIds(db, { schema: ctx.options.schema, tenantId: ctx.tenantId === undefined ? undefined : t, message: a.message as string, since, limit: BULK_LIMIT }))
      for (const r of ids) await p.queues.withTenant(r.tenant_id).retry(r.id)
      return `Pushed ${ids.length} failed jobs again.`
    },
  },
  'failures.cancel': {
    params: (f) => ({ message: String(f.get('message') ?? '') }),
    run: async (ctx, p, t, a) => {
      const ids = await ctx.read((db) => failureLiveIds(db, { schema: ctx.options.schema, tenantId: ctx.tenantId === undefined ? undefined : t, message: a.message as string, limit: BULK_LIMIT }))
      let n = 0
      for (const r of ids) if ((await p.queues.withTenant(r.tenant_id).cancel(r.id)) !== 'not_found') n += 1
      return `Cancelled ${n} jobs.`
    },
  },
}

/**
 * The tenant an action acts for: in tenant mode always the resolved one (a tenant field in the form is
 * ignored, so editing it reaches nothing); the operator names it in the form. Bulk actions of the
 * operator span tenants ('*'): each job is acted on as its own tenant.
 */
export function actionTenant(ctx: PageContext, name: string, form: FormData): string {
  if (ctx.tenantId !== undefined) return ctx.tenantId
  if (name.startsWith('failures.')) return '*'
  return validateTenantId(form.get('tenant'))
}
