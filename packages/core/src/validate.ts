import { PgQueueValidationError } from './errors.js'

/**
 * Input limits shared by every package. Names are limited in UTF-8 bytes, not characters: the database
 * indexes them, and a B-tree index row must stay far below its limit of about 2,700 bytes whatever the
 * script (a CJK character takes 3 bytes, an emoji 4). Migration 13 enforces the same limits in the
 * database, so raw SQL cannot go past them either.
 */
export const LIMITS = Object.freeze({
  tenantId: 256,
  queueName: 128,
  type: 128,
  key: 512,
  payloadType: 255,
  /** Default payload limit; producers may lower it, or raise it up to DATABASE_LIMITS.payloadBytes. */
  payloadBytes: 16 * 1024 * 1024,
  targetBytes: 1024 * 1024,
  priority: 1_000_000,
  /** A schedule's cron expression, in bytes. */
  cron: 1024,
})

/**
 * Hard caps the database itself enforces (migration 13), above anything a client may configure:
 * payloads and results in bytes, and the stored (possibly compressed) size of a JSON column.
 */
export const DATABASE_LIMITS = Object.freeze({
  payloadBytes: 64 * 1024 * 1024,
  jsonStoredBytes: 8 * 1024 * 1024,
})

/** The length of `value` in UTF-8 bytes. */
export function utf8Length(value: string): number {
  return Buffer.byteLength(value, 'utf8')
}

/** A non-empty string without NUL, at most `maxBytes` bytes in UTF-8. */
export function validateName(field: string, value: unknown, maxBytes: number): string {
  if (typeof value !== 'string' || value.length === 0) throw new PgQueueValidationError(field, 'must be a non-empty string', value)
  if (value.includes('\u0000')) throw new PgQueueValidationError(field, 'must not contain NUL characters', value)
  // A lone UTF-16 surrogate would reach PostgreSQL as U+FFFD, so two different names could match one row.
  if (!isWellFormed(value)) throw new PgQueueValidationError(field, 'must be well-formed Unicode (no lone surrogates)', value)
  // A UTF-16 unit is at most 3 UTF-8 bytes, so short names skip the count.
  if (value.length * 3 > maxBytes && utf8Length(value) > maxBytes) {
    throw new PgQueueValidationError(field, `must be at most ${maxBytes} bytes in UTF-8 (got ${utf8Length(value)})`, value)
  }
  return value
}

/** True when `value` has no lone UTF-16 surrogate (String.prototype.isWellFormed, with a fallback). */
export function isWellFormed(value: string): boolean {
  const native = (value as { isWellFormed?: () => boolean }).isWellFormed
  if (typeof native === 'function') return native.call(value)
  return !/[\uD800-\uDFFF]/u.test(value)
}

/** PostgreSQL's timestamptz accepts years 4713 BC to 294276 AD; pgqueue accepts years 1 to 9999. */
const FIRST_YEAR_MS = new Date('0001-01-01T00:00:00Z').getTime()
const MAX_DATE_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999)

/** A valid Date between the years 1 and 9999. */
export function validateDate(field: string, value: unknown): Date {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) throw new PgQueueValidationError(field, 'must be a valid Date', value)
  const t = value.getTime()
  if (t < FIRST_YEAR_MS || t > MAX_DATE_MS) throw new PgQueueValidationError(field, 'must be between the years 1 and 9999', value)
  return value
}

/** A \\uD800-\\uDFFF escape whose backslash is not itself escaped. */
const LONE_SURROGATE_ESCAPE = /(?<!\\)(?:\\\\)*\\u[dD][89a-fA-F][0-9a-fA-F]{2}/

/** Serialises a JSON value, rejecting what JSON cannot carry faithfully (functions, cycles, BigInt, undefined at top). */
export function serializeJson(field: string, value: unknown, maxBytes: number = LIMITS.targetBytes): string {
  let text: string | undefined
  try {
    text = JSON.stringify(value, (_k, v) => {
      if (typeof v === 'function' || typeof v === 'symbol') throw new TypeError(`contains a ${typeof v}`)
      if (typeof v === 'number' && !Number.isFinite(v)) throw new TypeError('contains a non-finite number')
      return v
    })
  } catch (err) {
    throw new PgQueueValidationError(field, `must be JSON-serialisable: ${(err as Error).message}`, value)
  }
  if (text === undefined) throw new PgQueueValidationError(field, 'must be JSON-serialisable', value)
  if (text.includes('\\u0000')) throw new PgQueueValidationError(field, 'must not contain NUL characters (PostgreSQL jsonb cannot store them)', value)
  // JSON.stringify escapes a lone surrogate as \udXXX, which jsonb refuses; a well-formed pair is written as is.
  if (LONE_SURROGATE_ESCAPE.test(text)) throw new PgQueueValidationError(field, 'must be well-formed Unicode (no lone surrogates)', value)
  if (Buffer.byteLength(text) > maxBytes) throw new PgQueueValidationError(field, `must serialise to at most ${maxBytes} bytes`, value)
  return text
}

/** An integer within [min, max]. */
export function validateInt(field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new PgQueueValidationError(field, `must be an integer from ${min} to ${max}`, value)
  }
  return value
}

/** An optional integer option: `fallback` when undefined, else checked like validateInt. */
export function validateOptionalInt(field: string, value: unknown, fallback: number, min: number, max: number): number {
  return value === undefined ? fallback : validateInt(field, value, min, max)
}
