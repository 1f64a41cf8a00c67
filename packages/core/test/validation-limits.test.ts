import { describe, expect, it } from 'vitest'
import {
  jobsChannel,
  parseSchedule,
  resolveSchemaOptions,
  validateDate,
  validateName,
  validateTenantId,
  LIMITS,
  MAX_SCHEMA_NAME_LENGTH,
  PgQueueValidationError,
} from '@pgqueue/core/internal'

function fieldOf(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(PgQueueValidationError)
    return (err as PgQueueValidationError).field
  }
  return undefined
}

describe('names are limited in UTF-8 bytes', () => {
  it('counts a CJK character as 3 bytes', () => {
    const fits = '队'.repeat(Math.floor(LIMITS.queueName / 3))
    expect(validateName('queue', fits, LIMITS.queueName)).toBe(fits)
    const over = '队'.repeat(Math.floor(LIMITS.queueName / 3) + 1)
    expect(over.length).toBeLessThan(LIMITS.queueName)
    expect(fieldOf(() => validateName('queue', over, LIMITS.queueName))).toBe('queue')
    expect(() => validateName('queue', over, LIMITS.queueName)).toThrow(/bytes/)
  })

  it('counts an emoji as 4 bytes and ASCII as 1', () => {
    expect(fieldOf(() => validateName('key', '🦀'.repeat(LIMITS.key / 4 + 1), LIMITS.key))).toBe('key')
    expect(validateName('key', '🦀'.repeat(LIMITS.key / 4), LIMITS.key)).toHaveLength(LIMITS.key / 2)
    expect(validateName('type', 'x'.repeat(LIMITS.type), LIMITS.type)).toHaveLength(LIMITS.type)
    expect(fieldOf(() => validateName('type', 'x'.repeat(LIMITS.type + 1), LIMITS.type))).toBe('type')
  })

  it('limits a cron expression in bytes', () => {
    const long = `${'0,'.repeat(LIMITS.cron)}0 * * * *`
    expect(fieldOf(() => parseSchedule({ cron: long }))).toBe('schedule.cron')
  })
})

describe('tenant ids', () => {
  it('accepts visible characters, inner spaces included, byte for byte', () => {
    for (const t of ['acme corp', "o'brien", 'zażółć 🎉', '租户一', 'a\tb'.replace('\t', '-')]) expect(validateTenantId(t)).toBe(t)
  })

  it('refuses blank ids, edge whitespace and invisible characters, without normalising', () => {
    const bad = [
      ' ', '   ', '\t', 'acme ', ' acme', 'acme\n', '\u00a0acme', 'acme\u3000',
      'ac\u200bme', 'ac\u200cme', 'ac\u200dme', 'ac\u200eme', 'ac\u200fme', 'ac\u2060me', '\ufeffacme', 'ac\u00adme',
      'ac\u0007me', 'ac\u001bme', 'ac\u007fme', 'ac\u0085me', 'ac\u009fme', 'ac\u202eme', 'ac\u2028me',
    ]
    for (const t of bad) expect(fieldOf(() => validateTenantId(t)), JSON.stringify(t)).toBe('tenantId')
  })

  it('limits ids to 256 bytes', () => {
    expect(validateTenantId('é'.repeat(128))).toHaveLength(128)
    expect(fieldOf(() => validateTenantId('é'.repeat(129)))).toBe('tenantId')
  })
})

describe('schema and role names', () => {
  it('caps the schema name so its notification channel fits 63 bytes', () => {
    expect(MAX_SCHEMA_NAME_LENGTH).toBe(50)
    const longest = 's'.repeat(MAX_SCHEMA_NAME_LENGTH)
    expect(resolveSchemaOptions({ schema: longest }).schema).toBe(longest)
    expect(jobsChannel(longest)).toHaveLength(63)
    for (const n of [51, 63]) expect(fieldOf(() => resolveSchemaOptions({ schema: 's'.repeat(n) }))).toBe('schema')
  })

  it('refuses public, information_schema and pg_ schemas, and reserved role names', () => {
    for (const schema of ['public', 'pg_catalog', 'information_schema', 'pg_toast', 'pg_temp', 'pg_mine']) {
      expect(fieldOf(() => resolveSchemaOptions({ schema }))).toBe('schema')
    }
    for (const workerRole of ['public', 'pg_monitor', 'none', 'current_user']) expect(fieldOf(() => resolveSchemaOptions({ workerRole }))).toBe('workerRole')
    expect(fieldOf(() => resolveSchemaOptions({ userRole: 'session_user' }))).toBe('userRole')
  })
})

describe('dates', () => {
  it('accepts the years 1 to 9999 only', () => {
    expect(validateDate('runAt', new Date('0001-01-01T00:00:00Z'))).toBeInstanceOf(Date)
    expect(validateDate('runAt', new Date('9999-12-31T23:59:59.999Z'))).toBeInstanceOf(Date)
    for (const d of [new Date('0000-12-31T23:59:59.999Z'), new Date(-8.64e15), new Date('+010000-01-01T00:00:00Z'), new Date(8.64e15)]) {
      expect(fieldOf(() => validateDate('runAt', d))).toBe('runAt')
    }
  })
})
