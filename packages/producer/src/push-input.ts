import {
  LIMITS,
  JSON_TYPE,
  PgQueueValidationError,
  isUuid,
  serializeJson,
  uuidv7,
  validateDate,
  validateInt,
  validateCost,
  validateName,
  validateRetryPolicy,
} from '@pgqueue/core/internal'
import type { Payload, PushItem } from './types.js'

/** The longest delay accepted: ten years. */
const MAX_DELAY_MS = 10 * 365 * 24 * 3600 * 1000

/** One validated job, in the shape push_jobs() takes (one element of each of its arrays). */
export interface PushRow {
  id: string
  queue: string
  type: string
  key: string | null
  payload: Buffer | null
  payloadType: string | null
  /** JSON text. */
  target: string | null
  priority: number
  /** null: due now (the database's now()). */
  runAt: Date | null
  /** null: the queue's policy, else the default (resolved by push_jobs()). */
  maxAttempts: number | null
  /** JSON text. */
  retryPolicy: string | null
  scheduleId: string | null
  retryOf: string | null
  /** Tokens the job takes from its rate limits; absent: 1. */
  cost?: number
}

/**
 * Checks a payload and turns it into bytes: a string defaults its type to UTF-8 text, any other JSON
 * value (object, array, number, boolean) is serialised and typed application/json.
 */
export function validatePayload(field: string, payload: Payload | null | undefined, payloadType: unknown, limit: number): { payload: Buffer | null; payloadType: string | null } {
  let bytes: Buffer | null
  let defaultType: string | null = null
  if (payload === undefined || payload === null) bytes = null
  else if (typeof payload === 'string') {
    bytes = Buffer.from(payload, 'utf8')
    defaultType = 'text/plain; charset=utf-8'
  } else if (Buffer.isBuffer(payload)) bytes = payload
  else if (payload instanceof Uint8Array) bytes = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)
  else {
    bytes = Buffer.from(serializeJson(`${field}.payload`, payload, limit), 'utf8')
    defaultType = JSON_TYPE
  }
  if (bytes !== null && bytes.byteLength > limit) throw new PgQueueValidationError(`${field}.payload`, `must be at most ${limit} bytes (payloadLimitBytes)`, bytes.byteLength)
  let type: string | null = defaultType
  if (payloadType !== undefined && payloadType !== null) type = validateName(`${field}.payloadType`, payloadType, LIMITS.payloadType)
  return { payload: bytes, payloadType: type }
}

/** Checks a priority: an integer within LIMITS.priority either side of 0. */
export function validatePriority(field: string, value: unknown): number {
  return value === undefined ? 0 : validateInt(field, value, -LIMITS.priority, LIMITS.priority)
}

/** Checks a JSON target; undefined and null are stored as SQL null. */
export function validateTarget(field: string, value: unknown): string | null {
  return value === undefined || value === null ? null : serializeJson(field, value)
}

/**
 * Checks one push item and returns its row. `field` prefixes error fields ('item', 'items[3]').
 * Throws PgQueueValidationError naming the first bad field; nothing is written before every item passed.
 */
export function validatePushItem(item: unknown, field: string, payloadLimit: number, now: () => Date): PushRow {
  if (typeof item !== 'object' || item === null || Array.isArray(item)) throw new PgQueueValidationError(field, 'must be an object', item)
  const i = item as PushItem & { scheduleId?: unknown }
  const queue = validateName(`${field}.queue`, i.queue, LIMITS.queueName)
  const type = validateName(`${field}.type`, i.type, LIMITS.type)
  const key = i.key === undefined || i.key === null ? null : validateName(`${field}.key`, i.key, LIMITS.key)
  const { payload, payloadType } = validatePayload(field, i.payload, i.payloadType, payloadLimit)
  const target = validateTarget(`${field}.target`, i.target)
  const priority = validatePriority(`${field}.priority`, i.priority)
  if (i.delay !== undefined && i.runAt !== undefined) throw new PgQueueValidationError(`${field}.delay`, 'give either delay or runAt, not both', i.delay)
  let runAt: Date | null = null
  if (i.delay !== undefined) {
    const delay = validateInt(`${field}.delay`, i.delay, 0, MAX_DELAY_MS)
    // A zero delay means "now" by the database's clock, so client clock skew cannot make it wait.
    if (delay > 0) runAt = new Date(now().getTime() + delay)
  } else if (i.runAt !== undefined) {
    runAt = validateDate(`${field}.runAt`, i.runAt)
  }
  let maxAttempts: number | null = null
  let retryPolicy: string | null = null
  if (i.retryPolicy !== undefined && i.retryPolicy !== null) {
    const policy = validateRetryPolicy(i.retryPolicy, `${field}.retryPolicy`)
    maxAttempts = policy.maxAttempts
    retryPolicy = JSON.stringify(policy)
  }
  const row: PushRow = { id: uuidv7(), queue, type, key, payload, payloadType, target, priority, runAt, maxAttempts, retryPolicy, scheduleId: null, retryOf: null }
  if (i.cost !== undefined) row.cost = validateCost(i.cost, `${field}.cost`)
  return row
}

/** Checks a job id: a UUID string. */
export function validateJobId(field: string, id: unknown): string {
  if (!isUuid(id)) throw new PgQueueValidationError(field, 'must be a UUID', id)
  return id.toLowerCase()
}

/** Checks a job reference: an id, or { queue, key }. */
export function validateJobRef(field: string, ref: unknown): { id: string } | { queue: string; key: string } {
  if (typeof ref === 'string') return { id: validateJobId(field, ref) }
  if (typeof ref === 'object' && ref !== null) {
    const r = ref as { queue?: unknown; key?: unknown }
    return { queue: validateName(`${field}.queue`, r.queue, LIMITS.queueName), key: validateName(`${field}.key`, r.key, LIMITS.key) }
  }
  throw new PgQueueValidationError(field, 'must be a job id or { queue, key }', ref)
}
