/** Stable machine-readable error codes, one per error class. */
export type PgQueueErrorCode =
  | 'PGQUEUE_ERROR'
  | 'VALIDATION'
  | 'TENANT_REQUIRED'
  | 'TENANT_ACCESS'
  | 'NOT_FOUND'
  | 'JOB_RUNNING'
  | 'MIGRATION'
  | 'ROLE_SETUP'
  | 'STOPPED'
  | 'SETUP'
  | 'TIMEOUT'

/** Base class of every error pgqueue throws on purpose. */
export class PgQueueError extends Error {
  readonly code: PgQueueErrorCode
  constructor(message: string, options?: { code?: PgQueueErrorCode; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.name = new.target.name
    this.code = options?.code ?? 'PGQUEUE_ERROR'
  }
}

/** Invalid input, rejected before anything is written. `field` names the offending input. */
export class PgQueueValidationError extends PgQueueError {
  readonly field: string
  readonly value: unknown
  constructor(field: string, message: string, value?: unknown) {
    super(`${field}: ${message}`, { code: 'VALIDATION' })
    this.field = field
    this.value = value
  }
}

/** A tenant-scoped operation ran without a tenant, or with an empty one. */
export class PgQueueTenantRequiredError extends PgQueueError {
  constructor(message = 'a tenant is required: use withTenant(tenantId)') {
    super(message, { code: 'TENANT_REQUIRED' })
  }
}

/** PostgreSQL refused a row because of row-level security (wrong or missing tenant context). */
export class PgQueueTenantAccessError extends PgQueueError {
  readonly tenantId: string | undefined
  constructor(tenantId: string | undefined, cause?: unknown) {
    super(`row-level security refused the operation for tenant ${JSON.stringify(tenantId ?? null)}`, {
      code: 'TENANT_ACCESS',
      cause,
    })
    this.tenantId = tenantId
  }
}

/** The addressed job, history row or schedule does not exist for this tenant. */
export class PgQueueNotFoundError extends PgQueueError {
  readonly entity: string
  readonly ref: unknown
  constructor(entity: string, ref: unknown) {
    super(`${entity} not found: ${JSON.stringify(ref)}`, { code: 'NOT_FOUND' })
    this.entity = entity
    this.ref = ref
  }
}

/** A push by key met a job with that key that a worker is running; the running job is never replaced. */
export class PgQueueJobRunningError extends PgQueueError {
  readonly queue: string
  readonly key: string
  readonly jobId: string
  constructor(queue: string, key: string, jobId: string) {
    super(`job with key ${JSON.stringify(key)} in queue ${JSON.stringify(queue)} is running and cannot be replaced`, {
      code: 'JOB_RUNNING',
    })
    this.queue = queue
    this.key = key
    this.jobId = jobId
  }
}

/** The recorded migrations do not match this build (changed checksum, unknown version), or one failed. */
export class PgQueueMigrationError extends PgQueueError {
  readonly version: number | undefined
  constructor(message: string, version?: number, cause?: unknown) {
    super(message, { code: 'MIGRATION', cause })
    this.version = version
  }
}

/** The group roles are missing and the connecting role may not create them. */
export class PgQueueRoleSetupError extends PgQueueError {
  constructor(message: string, cause?: unknown) {
    super(message, { code: 'ROLE_SETUP', cause })
  }
}

/** An operation on a component that was stopped or closed. */
export class PgQueueStoppedError extends PgQueueError {
  constructor(component: string) {
    super(`${component} is stopped`, { code: 'STOPPED' })
  }
}

/**
 * A component cannot run against this database as it is: the schema is missing or at another version, or
 * the login holds the wrong pgqueue role. The message says what to run or which login to use.
 */
export class PgQueueSetupError extends PgQueueError {
  constructor(message: string, cause?: unknown) {
    super(message, { code: 'SETUP', cause })
  }
}

/** PostgreSQL's SQLSTATE for insufficient_privilege, which RLS WITH CHECK failures use too. */
const INSUFFICIENT_PRIVILEGE = '42501'

/** True when `err` is PostgreSQL's insufficient_privilege (RLS violations included). */
export function isInsufficientPrivilege(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === INSUFFICIENT_PRIVILEGE
}

/**
 * True for SQLSTATE class 22 (data exception) or 23 (integrity constraint violation): the same input
 * fails every time, so retrying it unchanged cannot help.
 */
export function isDataError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' && (code.startsWith('22') || code.startsWith('23'))
}

/** A statement got no answer in time, and its connection was closed (a stalled network or server). */
export class PgQueueQueryTimeoutError extends PgQueueError {
  readonly timeoutMs: number
  constructor(timeoutMs: number) {
    super(`no answer from PostgreSQL within ${timeoutMs} ms (network down or server stalled); the connection was closed`, { code: 'TIMEOUT' })
    this.timeoutMs = timeoutMs
  }
}
