import { PgQueueValidationError } from './errors.js'

/**
 * How a failed job is retried. `maxAttempts` counts every run, the first included.
 * - exponential: delayMs * factor^(n-1) after the n-th failure, capped at maxDelayMs, with jitter;
 * - linear: delayMs * n, capped at maxDelayMs;
 * - constant: delayMs every time.
 */
export type RetryPolicy =
  | { type: 'exponential'; delayMs: number; maxAttempts: number; maxDelayMs?: number; factor?: number; jitter?: number }
  | { type: 'linear'; delayMs: number; maxAttempts: number; maxDelayMs?: number; jitter?: number }
  | { type: 'constant'; delayMs: number; maxAttempts: number; jitter?: number }

/** Used when neither the job nor its queue names a policy: 5 runs, 5 s doubling up to 15 min, 10% jitter. */
export const DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({
  type: 'exponential',
  delayMs: 5_000,
  maxDelayMs: 900_000,
  maxAttempts: 5,
  factor: 2,
  jitter: 0.1,
})

const MAX_ATTEMPTS_LIMIT = 1_000
const MAX_DELAY_LIMIT = 365 * 24 * 3600 * 1000

function checkInt(field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new PgQueueValidationError(field, `must be an integer from ${min} to ${max}`, value)
  }
  return value
}

function checkFraction(field: string, value: unknown): number | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 1) {
    throw new PgQueueValidationError(field, 'must be a number from 0 to 1', value)
  }
  return value
}

/** Checks a policy given by a caller and returns a normalised copy; throws PgQueueValidationError naming the field. */
export function validateRetryPolicy(input: unknown, field = 'retryPolicy'): RetryPolicy {
  if (typeof input !== 'object' || input === null) throw new PgQueueValidationError(field, 'must be an object', input)
  const p = input as Record<string, unknown>
  const maxAttempts = checkInt(`${field}.maxAttempts`, p.maxAttempts, 1, MAX_ATTEMPTS_LIMIT)
  const delayMs = checkInt(`${field}.delayMs`, p.delayMs, 0, MAX_DELAY_LIMIT)
  const jitter = checkFraction(`${field}.jitter`, p.jitter)
  const withJitter = <T extends object>(o: T) => (jitter === undefined ? o : { ...o, jitter })
  switch (p.type) {
    case 'exponential': {
      const maxDelayMs = p.maxDelayMs === undefined ? undefined : checkInt(`${field}.maxDelayMs`, p.maxDelayMs, delayMs, MAX_DELAY_LIMIT)
      let factor: number | undefined
      if (p.factor !== undefined) {
        if (typeof p.factor !== 'number' || !(p.factor > 1 && p.factor <= 10)) {
          throw new PgQueueValidationError(`${field}.factor`, 'must be a number above 1 and at most 10', p.factor)
        }
        factor = p.factor
      }
      return withJitter({ type: 'exponential', delayMs, maxAttempts, ...(maxDelayMs === undefined ? {} : { maxDelayMs }), ...(factor === undefined ? {} : { factor }) })
    }
    case 'linear': {
      const maxDelayMs = p.maxDelayMs === undefined ? undefined : checkInt(`${field}.maxDelayMs`, p.maxDelayMs, delayMs, MAX_DELAY_LIMIT)
      return withJitter({ type: 'linear', delayMs, maxAttempts, ...(maxDelayMs === undefined ? {} : { maxDelayMs }) })
    }
    case 'constant':
      return withJitter({ type: 'constant', delayMs, maxAttempts })
    default:
      throw new PgQueueValidationError(`${field}.type`, "must be 'exponential', 'linear' or 'constant'", p.type)
  }
}

/**
 * The delay before the next run after the `failures`-th failed run (1 for the first failure).
 * Jitter removes up to `jitter` of the delay at random, so retries of many jobs that failed together
 * spread out instead of arriving as one burst; the cap is never exceeded.
 */
export function retryDelayMs(policy: RetryPolicy, failures: number, random: () => number = Math.random): number {
  const n = Math.max(1, Math.floor(failures))
  let delay: number
  switch (policy.type) {
    case 'exponential':
      delay = policy.delayMs * Math.pow(policy.factor ?? 2, n - 1)
      if (policy.maxDelayMs !== undefined) delay = Math.min(delay, policy.maxDelayMs)
      break
    case 'linear':
      delay = policy.delayMs * n
      if (policy.maxDelayMs !== undefined) delay = Math.min(delay, policy.maxDelayMs)
      break
    case 'constant':
      delay = policy.delayMs
      break
  }
  delay = Math.min(delay, MAX_DELAY_LIMIT)
  const jitter = policy.jitter ?? 0
  return Math.round(delay * (1 - jitter * random()))
}

/** True when a job that has run `attempts` times may run again under `policy`. */
export function canRetry(policy: RetryPolicy, attempts: number): boolean {
  return attempts < policy.maxAttempts
}
