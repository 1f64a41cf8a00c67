import { sql, type Kysely, type Transaction } from 'kysely'
import { PgQueueTenantRequiredError, PgQueueValidationError } from './errors.js'
import { isWellFormed } from './validate.js'

/** The transaction-local setting row-level security reads. */
export const TENANT_SETTING = 'pgqueue.tenant'

/** Longest tenant id accepted. */
export const MAX_TENANT_ID_LENGTH = 256

/**
 * Checks a tenant id: a non-empty string without NUL (PostgreSQL text cannot hold NUL), at most
 * MAX_TENANT_ID_LENGTH characters. Any other character, quotes and SQL included, is stored literally.
 */
export function validateTenantId(tenantId: unknown): string {
  if (tenantId === undefined || tenantId === null || tenantId === '') throw new PgQueueTenantRequiredError()
  if (typeof tenantId !== 'string') throw new PgQueueValidationError('tenantId', 'must be a string', tenantId)
  if (tenantId.length > MAX_TENANT_ID_LENGTH) throw new PgQueueValidationError('tenantId', `must be at most ${MAX_TENANT_ID_LENGTH} characters`, tenantId)
  if (tenantId.includes('\u0000')) throw new PgQueueValidationError('tenantId', 'must not contain NUL characters', tenantId)
  if (!isWellFormed(tenantId)) throw new PgQueueValidationError('tenantId', 'must be well-formed Unicode (no lone surrogates)', tenantId)
  return tenantId
}

/** Sets the tenant for the rest of the current transaction only (safe with pools and PgBouncer). */
export async function setTenant(trx: Kysely<any> | Transaction<any>, tenantId: string): Promise<void> {
  await sql`select set_config(${TENANT_SETTING}, ${tenantId}, true)`.execute(trx)
}

/** Runs `fn` in a transaction scoped to `tenantId`. */
export async function withTenantTransaction<DB, T>(db: Kysely<DB>, tenantId: string, fn: (trx: Transaction<DB>) => Promise<T>): Promise<T> {
  const tenant = validateTenantId(tenantId)
  return db.transaction().execute(async (trx) => {
    await setTenant(trx, tenant)
    return fn(trx)
  })
}
