import { describe, expect, it } from 'vitest'
import { ClaimFloors, compareVt } from '../src/claim-floor.js'

describe('claim floors (issue 19)', () => {
  it('reads from the front first, then from the lowest vt claimed at least 500 ms before', () => {
    const f = new ClaimFloors()
    expect(f.from('q', 0)).toBeUndefined()
    f.claimed('q', 0, '1000')
    expect(f.from('q', 100)).toBeUndefined()
    f.claimed('q', 100, '5000')
    expect(f.from('q', 550)).toBe('1000')
    f.claimed('q', 550, '9000')
    expect(f.from('q', 700)).toBe('5000')
  })

  it('reads from the front again every second (a job below the floor waits that long at most)', () => {
    const f = new ClaimFloors()
    f.from('q', 0)
    f.claimed('q', 0, '1000')
    expect(f.from('q', 600)).toBe('1000')
    expect(f.from('q', 1_000)).toBeUndefined()
    expect(f.from('q', 1_100)).toBe('1000')
  })

  it('a lower vt claimed lowers every sample; another claim kind forgets the queue', () => {
    const f = new ClaimFloors()
    f.from('q', 0)
    f.claimed('q', 0, '5000')
    f.claimed('q', 100, '900')
    expect(f.from('q', 600)).toBe('900')
    f.forget('q')
    expect(f.from('q', 700)).toBeUndefined()
  })

  it('compares vt as numbers', () => {
    expect(compareVt('999', '1000')).toBeLessThan(0)
    expect(compareVt('1000', '1000')).toBe(0)
    expect(compareVt('2000', '1000')).toBeGreaterThan(0)
  })
})
