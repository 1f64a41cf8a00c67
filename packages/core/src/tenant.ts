import { createHmac } from 'node:crypto'
import { sql, type Kysely, type Transaction } from 'kysely'
import { PgQueueTenantRequiredError, PgQueueValidationError } from './errors.js'
import { isWellFormed, LIMITS, utf8Length } from './validate.js'

/** The transaction-local setting row-level security reads. */
export const TENANT_SETTING = 'pgqueue.tenant'
/** The transaction-local setting that proves TENANT_SETTING was set by a holder of the tenant secret. */
export const TENANT_TOKEN_SETTING = 'pgqueue.tenant_token'
/** Environment variable read when no tenantSecret option is given. */
export const TENANT_SECRET_ENV = 'PGQUEUE_TENANT_SECRET'
/** Shortest tenant secret accepted (the database enforces the same). */
export const MIN_TENANT_SECRET_LENGTH = 32
/** Tenants whose token a TenantKey keeps at once. */
const TOKEN_CACHE_SIZE = 10_000

/**
 * The installation's tenant secret, held by the application (never by SQL on its connections): it signs a
 * transaction in as one tenant. The database stores the same secret where only the schema owner can read
 * it and checks the signature in current_tenant(), so code with a user-role connection but without the
 * secret cannot switch to another tenant. See docs/THREAT-MODEL.md.
 */
export class TenantKey {
  readonly #secret: string
  /** Recent tokens by tenant: an HMAC costs more than the rest of a single push's client work. */
  readonly #tokens = new Map<string, string>()

  private constructor(secret: string) {
    this.#secret = secret
  }

  /**
   * The key from an option, else from PGQUEUE_TENANT_SECRET. Throws PgQueueValidationError naming `field`
   * when neither holds a secret of at least 32 characters.
   */
  static resolve(value: unknown, field = 'tenantSecret'): TenantKey {
    const secret = tenantSecretFrom(value, field)
    if (secret === undefined) {
      throw new PgQueueValidationError(field,
        `is required to act for a tenant: pass the tenantSecret that initialize() returns (or set ${TENANT_SECRET_ENV})`, value)
    }
    return new TenantKey(secret)
  }

  /** Like resolve(), but undefined when neither the option nor PGQUEUE_TENANT_SECRET is set. */
  static resolveOptional(value: unknown, field = 'tenantSecret'): TenantKey | undefined {
    const secret = tenantSecretFrom(value, field)
    return secret === undefined ? undefined : new TenantKey(secret)
  }

  /** hex(HMAC-SHA256(secret, tenantId)): what current_tenant() expects in pgqueue.tenant_token. */
  token(tenantId: string): string {
    let token = this.#tokens.get(tenantId)
    if (token === undefined) {
      token = createHmac('sha256', this.#secret).update(tenantId, 'utf8').digest('hex')
      // Bounded: a service acting for many tenants starts over rather than grow without end.
      if (this.#tokens.size >= TOKEN_CACHE_SIZE) this.#tokens.clear()
      this.#tokens.set(tenantId, token)
    }
    return token
  }

  /** Keeps the secret out of logs and error reports. */
  toJSON(): string {
    return '[TenantKey]'
  }
}

/**
 * The tenant secret from an option, else from PGQUEUE_TENANT_SECRET; undefined when neither is set.
 * Throws PgQueueValidationError naming `field` for a secret shorter than 32 characters.
 */
export function tenantSecretFrom(value: unknown, field = 'tenantSecret'): string | undefined {
  const secret = value === undefined || value === '' ? process.env[TENANT_SECRET_ENV] : value
  if (secret === undefined || secret === '') return undefined
  if (typeof secret !== 'string' || secret.length < MIN_TENANT_SECRET_LENGTH) {
    throw new PgQueueValidationError(field, `must be a string of at least ${MIN_TENANT_SECRET_LENGTH} characters`, '[redacted]')
  }
  return secret
}

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

/**
 * Signs the current transaction in as `tenantId`, for the rest of it only (safe with pools and PgBouncer).
 * Without a key the tenant is set unsigned: enough for the worker role, which row-level security does not
 * scope, while a user-role statement then fails with 42501 saying the tenant is not signed.
 */
export async function setTenant(trx: Kysely<any> | Transaction<any>, key: TenantKey | undefined, tenantId: string): Promise<void> {
  await sql`select set_config(${TENANT_SETTING}, ${tenantId}, true), set_config(${TENANT_TOKEN_SETTING}, ${key?.token(tenantId) ?? ''}, true)`.execute(trx)
}

/** Runs `fn` in a transaction signed in as `tenantId` (see setTenant()). */
export async function withTenantTransaction<DB, T>(db: Kysely<DB>, key: TenantKey | undefined, tenantId: string, fn: (trx: Transaction<DB>) => Promise<T>): Promise<T> {
  const tenant = validateTenantId(tenantId)
  return db.transaction().execute(async (trx) => {
    await setTenant(trx, key, tenant)
    return fn(trx)
  })
}
