import { PgQueueValidationError } from '@pgqueue/core/internal'

/** Page size limits shared by every listing. */
export const DEFAULT_PAGE_SIZE = 100
export const MAX_PAGE_SIZE = 1000

/** Encodes a keyset position as an opaque string, so callers do not depend on what it holds. */
export function encodeCursor(parts: string[]): string {
  return Buffer.from(JSON.stringify(parts), 'utf8').toString('base64url')
}

/** Decodes a cursor made by encodeCursor() with `n` parts; throws PgQueueValidationError('cursor') otherwise. */
export function decodeCursor(cursor: unknown, n: number, check: (parts: string[]) => boolean = () => true): string[] | null {
  if (cursor === undefined || cursor === null) return null
  if (typeof cursor === 'string' && cursor.length > 0 && cursor.length < 2048) {
    try {
      const parts = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown
      if (Array.isArray(parts) && parts.length === n && parts.every((p) => typeof p === 'string') && check(parts)) return parts
    } catch {
      // fall through to the validation error
    }
  }
  throw new PgQueueValidationError('cursor', 'must be a nextCursor returned by a previous page', cursor)
}

/** Checks a page size. */
export function validateLimit(value: unknown): number {
  if (value === undefined) return DEFAULT_PAGE_SIZE
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_PAGE_SIZE) {
    throw new PgQueueValidationError('limit', `must be an integer from 1 to ${MAX_PAGE_SIZE}`, value)
  }
  return value
}

/** Microseconds since the epoch of 0001-01-01T00:00:00Z and of the last microsecond of 9999. */
const FIRST_US = BigInt(new Date('0001-01-01T00:00:00Z').getTime()) * 1000n
const LAST_US = BigInt(Date.UTC(9999, 11, 31, 23, 59, 59, 999)) * 1000n + 999n

/**
 * True for a cursor part holding an instant in whole microseconds within the years 1 to 9999 (the
 * range the database accepts), so a forged cursor is a validation error, not a database error.
 */
export function isCursorMicros(part: string | undefined): boolean {
  if (part === undefined || !/^-?\d{1,19}$/.test(part)) return false
  const us = BigInt(part)
  return us >= FIRST_US && us <= LAST_US
}
