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

/**
 * The longest schema name: the schema's notification channel, `pgqueue_<schema>_jobs` (listener.ts),
 * must fit PostgreSQL's identifier limit of 63 bytes, or NOTIFY refuses it.
 */
export const MAX_SCHEMA_NAME_LENGTH = 63 - 'pgqueue__jobs'.length

/** Schemas PostgreSQL owns or every role shares; pgqueue's tables and grants must not go there. */
const RESERVED_SCHEMAS = new Set(['public', 'information_schema'])
/** Names PostgreSQL refuses for a role. */
const RESERVED_ROLES = new Set(['public', 'none', 'current_user', 'current_role', 'session_user'])

/** Checks a schema or role name: lower-case letters, digits and underscores, at most 63 characters. */
export function validateIdentifier(value: unknown, field: string): string {
  if (typeof value !== 'string' || !IDENTIFIER_RE.test(value)) {
    throw new PgQueueValidationError(field, 'must match /^[a-z_][a-z0-9_]{0,62}$/', value)
  }
  return value
}

/**
 * Checks a schema name: an identifier of at most MAX_SCHEMA_NAME_LENGTH characters that is neither a
 * system schema (pg_*, information_schema) nor `public`, whose privileges every role shares.
 */
export function validateSchemaName(value: unknown, field = 'schema'): string {
  const name = validateIdentifier(value, field)
  if (name.length > MAX_SCHEMA_NAME_LENGTH) {
    throw new PgQueueValidationError(field, `must be at most ${MAX_SCHEMA_NAME_LENGTH} characters (its notification channel pgqueue_<schema>_jobs must fit 63)`, value)
  }
  if (name.startsWith('pg_') || RESERVED_SCHEMAS.has(name)) {
    throw new PgQueueValidationError(field, 'must not be public, information_schema or a pg_ schema; pick a schema of pgqueue\'s own', value)
  }
  return name
}

/** Checks a group role name: an identifier PostgreSQL accepts for a role (not pg_*, public, none...). */
export function validateRoleName(value: unknown, field: string): string {
  const name = validateIdentifier(value, field)
  if (name.startsWith('pg_') || RESERVED_ROLES.has(name)) throw new PgQueueValidationError(field, 'is a name PostgreSQL reserves for roles', value)
  return name
}

/** Fills defaults and validates names. */
export function resolveSchemaOptions(options: SchemaOptions = {}): ResolvedSchemaOptions {
  return {
    schema: validateSchemaName(options.schema ?? DEFAULT_SCHEMA, 'schema'),
    workerRole: validateRoleName(options.workerRole ?? DEFAULT_WORKER_ROLE, 'workerRole'),
    userRole: validateRoleName(options.userRole ?? DEFAULT_USER_ROLE, 'userRole'),
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
