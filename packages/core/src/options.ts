import { PgQueueValidationError } from './errors.js'

/** Where pgqueue lives and which group roles it grants to. Several installations can share a database. */
export interface SchemaOptions {
  /** Schema holding every pgqueue table. Default 'pgqueue'. */
  schema?: string
  /** NOLOGIN group role that sees every tenant (Worker, Scheduler, ScheduleRunner, global Stats). Default 'queue_worker'. */
  workerRole?: string
  /** NOLOGIN group role limited by row-level security to the transaction's tenant. Default 'queue_user'. */
  userRole?: string
}

/** SchemaOptions with defaults filled in and checked. */
export interface ResolvedSchemaOptions {
  schema: string
  workerRole: string
  userRole: string
}

export const DEFAULT_SCHEMA = 'pgqueue'
export const DEFAULT_WORKER_ROLE = 'queue_worker'
export const DEFAULT_USER_ROLE = 'queue_user'

const IDENTIFIER_RE = /^[a-z_][a-z0-9_]{0,62}$/

/** Checks a schema or role name: lower-case letters, digits and underscores, at most 63 characters. */
export function validateIdentifier(value: unknown, field: string): string {
  if (typeof value !== 'string' || !IDENTIFIER_RE.test(value)) {
    throw new PgQueueValidationError(field, 'must match /^[a-z_][a-z0-9_]{0,62}$/', value)
  }
  return value
}

/** Fills defaults and validates names. */
export function resolveSchemaOptions(options: SchemaOptions = {}): ResolvedSchemaOptions {
  return {
    schema: validateIdentifier(options.schema ?? DEFAULT_SCHEMA, 'schema'),
    workerRole: validateIdentifier(options.workerRole ?? DEFAULT_WORKER_ROLE, 'workerRole'),
    userRole: validateIdentifier(options.userRole ?? DEFAULT_USER_ROLE, 'userRole'),
  }
}

/** Quotes an identifier for SQL text. Names are validated first, so this is belt and braces. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`
}

/** Quotes a string literal for SQL text (used only for names the library itself derives). */
export function quoteLiteral(value: string): string {
  return `'${value.replace(/'/g, "''")}'`
}
