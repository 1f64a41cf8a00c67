import { PgQueueValidationError, resolveSchemaOptions, type Connectable } from '@pgqueue/core/internal'

/** What an action is about to do, handed to `beforeAction` (authorisation, audit). */
export interface DashboardAction {
  /** queue.pause, queue.resume, queue.configure, job.retry, job.cancel, schedule.pause, schedule.resume, schedule.run, failures.retry, failures.cancel */
  name: string
  /** The tenant the action acts for. */
  tenantId: string
  /** The action's target and settings (queue, job id, schedule key, error message...). */
  params: Record<string, unknown>
  /** The request that asked for it. */
  request: Request
}

/** Options of createDashboard(). */
export interface DashboardOptions {
  /**
   * 'tenant': one tenant per request, resolved by `resolveTenant`, on a user-role login (row-level
   * security scopes every query). 'operator': every tenant, reads on a worker-role login.
   */
  mode: 'tenant' | 'operator'
  /** The login that reads: the user role in tenant mode, the worker role in operator mode. A URL or a pg.Pool you own. */
  connection: Connectable
  /**
   * Operator mode: a user-role login that carries out actions, signed in as the tenant of the row acted
   * on (the worker role may not change queue settings or cancel jobs). Without it an operator dashboard
   * is read-only. Tenant mode acts on `connection`.
   */
  actionConnection?: Connectable
  /** The installation's tenant secret; default PGQUEUE_TENANT_SECRET. Needed for user-role logins. */
  tenantSecret?: string
  /** Tenant mode: the tenant of a request (from your session), or null to answer 403. */
  resolveTenant?: (request: Request) => string | null | undefined | Promise<string | null | undefined>
  /** Shows everything, offers and accepts no action. Default false. */
  readOnly?: boolean
  /** Called before every action; throw to refuse it (the page shows the error's message, status 403). */
  beforeAction?: (action: DashboardAction) => void | Promise<void>
  /** The path prefix the handler is mounted under, e.g. '/admin/queues'. Default ''. */
  basePath?: string
  /** Secret for the CSRF tokens of forms. Default: random per process (forms then expire on restart). */
  csrfSecret?: string
  /** How often the one shared live refresh runs while pages are open, in ms. Default 2000. */
  refreshMs?: number
  /** Schema holding the pgqueue tables. Default 'pgqueue'. */
  schema?: string
  /** Pool size for URLs given. Default 4. */
  poolSize?: number
  /** Called with errors the dashboard answered with 500 or met in the live refresh (log them). Default: none. */
  onError?: (err: unknown) => void
  /** Page title. Default 'pgqueue'. */
  title?: string
}

export interface ResolvedDashboardOptions {
  mode: 'tenant' | 'operator'
  schema: string
  readOnly: boolean
  basePath: string
  refreshMs: number
  poolSize: number
  title: string
}

/** Fills defaults and rejects invalid options, naming the field. */
export function resolveDashboardOptions(o: DashboardOptions): ResolvedDashboardOptions {
  if (typeof o !== 'object' || o === null) throw new PgQueueValidationError('options', 'must be an object', o)
  if (o.mode !== 'tenant' && o.mode !== 'operator') throw new PgQueueValidationError('mode', "must be 'tenant' or 'operator'", o.mode)
  if (o.mode === 'tenant' && typeof o.resolveTenant !== 'function') {
    throw new PgQueueValidationError('resolveTenant', 'is required in tenant mode: a function from the request to its tenant id', o.resolveTenant)
  }
  if (o.mode === 'tenant' && o.actionConnection !== undefined) {
    throw new PgQueueValidationError('actionConnection', 'is for operator mode; tenant mode acts on its own connection', undefined)
  }
  if (o.beforeAction !== undefined && typeof o.beforeAction !== 'function') throw new PgQueueValidationError('beforeAction', 'must be a function', o.beforeAction)
  const basePath = (o.basePath ?? '').replace(/\/+$/, '')
  if (basePath !== '' && !/^\/[A-Za-z0-9._~\-/]*$/.test(basePath)) throw new PgQueueValidationError('basePath', "must be a path such as '/admin/queues'", o.basePath)
  const refreshMs = o.refreshMs ?? 2_000
  if (!Number.isInteger(refreshMs) || refreshMs < 250 || refreshMs > 3_600_000) throw new PgQueueValidationError('refreshMs', 'must be an integer from 250 to 3600000', refreshMs)
  const poolSize = o.poolSize ?? 4
  if (!Number.isInteger(poolSize) || poolSize < 1 || poolSize > 100) throw new PgQueueValidationError('poolSize', 'must be an integer from 1 to 100', poolSize)
  if (o.csrfSecret !== undefined && (typeof o.csrfSecret !== 'string' || o.csrfSecret.length < 16)) {
    throw new PgQueueValidationError('csrfSecret', 'must be a string of at least 16 characters', undefined)
  }
  return {
    mode: o.mode,
    schema: resolveSchemaOptions({ ...(o.schema !== undefined ? { schema: o.schema } : {}) }).schema,
    readOnly: o.readOnly === true || (o.mode === 'operator' && o.actionConnection === undefined),
    basePath,
    refreshMs,
    poolSize,
    title: o.title ?? 'pgqueue',
  }
}
