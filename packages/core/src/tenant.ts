import { sql, type Kysely, type Transaction } from 'kysely'
import { PgQueueTenantRequiredError, PgQueueValidationError } from './errors.js'
import { isWellFormed, LIMITS, utf8Length } from './validate.js'

/** The transaction-local setting row-level security reads. */
export const TENANT_SETTING = 'pgqueue.tenant'

/** Longest tenant id accepted, in UTF-8 bytes (the database enforces it too). */
export const MAX_TENANT_ID_LENGTH = LIMITS.tenantId

/**
 * Characters a tenant id may not contain anywhere: controls (C0, DEL, C1) and format characters
 * (zero-width spaces and joiners U+200B-U+200F, bidirectional marks, U+2060 word joiner, U+FEFF byte
 * order mark, soft hyphen...), and line and paragraph separators. They are invisible, so two ids that
 * differ only by one would look like the same tenant in every log and dashboard.
 */
const INVISIBLE_RE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u
/** Leading or trailing whitespace of any kind (a blank id is all whitespace). */
const EDGE_SPACE_RE = /^\s|\s$/u

/**
 * Checks a tenant id: a non-empty, well-formed string of at most MAX_TENANT_ID_LENGTH UTF-8 bytes,
 * without leading or trailing whitespace and without invisible characters (INVISIBLE_RE). Nothing is
 * normalised: an id is stored and compared byte for byte, so 'acme' and 'acme ' would otherwise be two
 * tenants that look alike; they are refused instead. Quotes, SQL and other visible characters, inner
 * spaces included, are stored literally.
 */
export function validateTenantId(tenantId: unknown): string {
  if (tenantId === undefined || tenantId === null || tenantId === '') throw new PgQueueTenantRequiredError()
  if (typeof tenantId !== 'string') throw new PgQueueValidationError('tenantId', 'must be a string', tenantId)
  if (tenantId.includes('\u0000')) throw new PgQueueValidationError('tenantId', 'must not contain NUL characters', tenantId)
  if (!isWellFormed(tenantId)) throw new PgQueueValidationError('tenantId', 'must be well-formed Unicode (no lone surrogates)', tenantId)
  if (tenantId.length * 3 > MAX_TENANT_ID_LENGTH && utf8Length(tenantId) > MAX_TENANT_ID_LENGTH) {
    throw new PgQueueValidationError('tenantId', `must be at most ${MAX_TENANT_ID_LENGTH} bytes in UTF-8`, tenantId)
  }
  if (EDGE_SPACE_RE.test(tenantId)) throw new PgQueueValidationError('tenantId', 'must not start or end with whitespace (nor be blank)', tenantId)
  if (INVISIBLE_RE.test(tenantId)) {
    throw new PgQueueValidationError('tenantId', 'must not contain control or invisible format characters (such as U+200B, U+FEFF)', tenantId)
  }
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
