import { PgQueueValidationError } from './errors.js'

/** Input limits shared by every package. */
export const LIMITS = Object.freeze({
  queueName: 128,
  type: 128,
  key: 512,
  payloadType: 255,
  /** Default payload limit; producers may lower or raise it. */
  payloadBytes: 16 * 1024 * 1024,
  targetBytes: 1024 * 1024,
  priority: 1_000_000,
})

/** A non-empty string without NUL, at most `max` characters. */
export function validateName(field: string, value: unknown, max: number): string {
  if (typeof value !== 'string' || value.length === 0) throw new PgQueueValidationError(field, 'must be a non-empty string', value)
  if (value.length > max) throw new PgQueueValidationError(field, `must be at most ${max} characters`, value)
  if (value.includes('\u0000')) throw new PgQueueValidationError(field, 'must not contain NUL characters', value)
  return value
}

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
