import { describe, expect, it } from 'vitest'
import { isTransientError } from '../src/completion-errors.js'
import { LeaseOwners } from '../src/lease-owner.js'
import { IdleClaimPacer } from '../src/wakeup.js'

describe('isTransientError', () => {
  it('retries connection, shutdown, deadlock and lock-timeout errors as they are', () => {
    for (const code of ['08006', '57P01', '53300', '40P01', '40001', '55P03', 'ECONNRESET', 'ECONNREFUSED']) {
      expect(isTransientError(Object.assign(new Error('x'), { code })), code).toBe(true)
    }
    expect(isTransientError(new Error('Connection terminated unexpectedly'))).toBe(true)
  })

  it('treats data errors, RangeErrors and errors without SQLSTATE as possibly caused by the batch', () => {
    for (const code of ['22003', '23514', '22P02', '42501', 'XX000']) {
      expect(isTransientError(Object.assign(new Error('x'), { code })), code).toBe(false)
    }
    expect(isTransientError(new RangeError('Invalid string length'))).toBe(false)
    expect(isTransientError(new TypeError('x'))).toBe(false)
    expect(isTransientError(new Error('something else'))).toBe(false)
    expect(isTransientError('a string')).toBe(false)
  })
})

describe('LeaseOwners', () => {
  it('gives every claim an owner no other claim, of this or another instance, repeats', () => {
    const a = new LeaseOwners('node/1')
    const b = new LeaseOwners('node/1')
    const seen = new Set<string>()
    for (let i = 0; i < 1000; i++) {
      seen.add(a.next())
      seen.add(b.next())
    }
    expect(seen.size).toBe(2000)
    const owner = a.next()
    expect(owner.startsWith('node/1/')).toBe(true)
    expect(owner.slice('node/1/'.length)).not.toContain('/')
  })
})

describe('IdleClaimPacer', () => {
  it('allows a burst, then one claim per gap; a claim that found work gives its token back and one more', () => {
    const p = new IdleClaimPacer(1_000, 3)
    expect([p.take(), p.take(), p.take()]).toEqual([0, 0, 0])
    expect(p.take()).toBeGreaterThan(900)
    p.credit()
    expect([p.take(), p.take()]).toEqual([0, 0])
    expect(p.take()).toBeGreaterThan(900)
    expect(new IdleClaimPacer(0).take()).toBe(0)
  })
})
