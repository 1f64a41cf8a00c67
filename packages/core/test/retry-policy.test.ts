import { describe, expect, it } from 'vitest'
import { DEFAULT_RETRY_POLICY, PgQueueValidationError, canRetry, retryDelayMs, validateRetryPolicy } from '@pgqueue/core/internal'

describe('retryDelayMs', () => {
  it('doubles exactly for exponential (not quadratic), up to the cap', () => {
    const p = validateRetryPolicy({ type: 'exponential', delayMs: 1000, maxDelayMs: 20_000, maxAttempts: 10 })
    expect([1, 2, 3, 4, 5, 6, 7].map((n) => retryDelayMs(p, n))).toEqual([1000, 2000, 4000, 8000, 16000, 20000, 20000])
  })

  it('honours a custom factor', () => {
    const p = validateRetryPolicy({ type: 'exponential', delayMs: 100, factor: 3, maxAttempts: 5 })
    expect([1, 2, 3, 4].map((n) => retryDelayMs(p, n))).toEqual([100, 300, 900, 2700])
  })

  it('grows linearly and stays constant', () => {
    const linear = validateRetryPolicy({ type: 'linear', delayMs: 500, maxDelayMs: 1200, maxAttempts: 5 })
    expect([1, 2, 3].map((n) => retryDelayMs(linear, n))).toEqual([500, 1000, 1200])
    const constant = validateRetryPolicy({ type: 'constant', delayMs: 700, maxAttempts: 5 })
    expect([1, 5, 50].map((n) => retryDelayMs(constant, n))).toEqual([700, 700, 700])
  })

  it('applies jitter within [delay * (1 - jitter), delay], never above the cap', () => {
    const p = validateRetryPolicy({ type: 'exponential', delayMs: 1000, maxDelayMs: 4000, maxAttempts: 9, jitter: 0.5 })
    expect(retryDelayMs(p, 3, () => 0)).toBe(4000)
    expect(retryDelayMs(p, 3, () => 0.999999)).toBe(2000)
    expect(retryDelayMs(p, 10, () => 0)).toBe(4000)
  })

  it('has a sane default and counts attempts including the first run', () => {
    expect(validateRetryPolicy(DEFAULT_RETRY_POLICY)).toEqual(DEFAULT_RETRY_POLICY)
    const p = validateRetryPolicy({ type: 'constant', delayMs: 0, maxAttempts: 3 })
    expect([1, 2, 3].map((a) => canRetry(p, a))).toEqual([true, true, false])
  })
})

describe('validateRetryPolicy', () => {
  const bad: Array<[unknown, string]> = [
    [null, 'retryPolicy'],
    [{ type: 'fibonacci', delayMs: 1, maxAttempts: 1 }, 'retryPolicy.type'],
    [{ type: 'constant', delayMs: -1, maxAttempts: 1 }, 'retryPolicy.delayMs'],
    [{ type: 'constant', delayMs: 1.5, maxAttempts: 1 }, 'retryPolicy.delayMs'],
    [{ type: 'constant', delayMs: 1, maxAttempts: 0 }, 'retryPolicy.maxAttempts'],
    [{ type: 'exponential', delayMs: 1000, maxDelayMs: 10, maxAttempts: 3 }, 'retryPolicy.maxDelayMs'],
    [{ type: 'exponential', delayMs: 1000, factor: 1, maxAttempts: 3 }, 'retryPolicy.factor'],
    [{ type: 'linear', delayMs: 1000, maxAttempts: 3, jitter: 2 }, 'retryPolicy.jitter'],
  ]
  it.each(bad)('rejects %j naming %s', (input, field) => {
    let err: unknown
    try {
      validateRetryPolicy(input)
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(PgQueueValidationError)
    expect((err as PgQueueValidationError).field).toBe(field)
  })
})
