import { describe, expect, it } from 'vitest'
import { isUuid, uuidv7, uuidv7Time, validateTenantId, PgQueueTenantRequiredError, PgQueueValidationError } from '@pgqueue/core/internal'

describe('uuidv7', () => {
  it('is a version 7, variant 1 UUID carrying its creation time', () => {
    const before = Date.now()
    const id = uuidv7()
    expect(isUuid(id)).toBe(true)
    expect(id[14]).toBe('7')
    expect(['8', '9', 'a', 'b']).toContain(id[19])
    expect(Math.abs(uuidv7Time(id).getTime() - before)).toBeLessThan(1000)
  })
  it('sorts by creation order within one process, even inside one millisecond', () => {
    const ids = Array.from({ length: 5000 }, () => uuidv7())
    expect([...ids].sort()).toEqual(ids)
    expect(new Set(ids).size).toBe(ids.length)
  })
})

describe('validateTenantId', () => {
  it('accepts any text, quotes and SQL included', () => {
    for (const t of ["o'brien", 'a\\b', '"; drop table jobs; --', 'zażółć 🎉']) expect(validateTenantId(t)).toBe(t)
  })
  it('rejects empty, NUL and oversize ids', () => {
    expect(() => validateTenantId('')).toThrow(PgQueueTenantRequiredError)
    expect(() => validateTenantId(undefined)).toThrow(PgQueueTenantRequiredError)
    expect(() => validateTenantId('a\u0000b')).toThrow(PgQueueValidationError)
    expect(() => validateTenantId('x'.repeat(300))).toThrow(PgQueueValidationError)
    expect(() => validateTenantId(42)).toThrow(PgQueueValidationError)
  })
})
