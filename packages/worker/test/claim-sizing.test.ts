import { describe, expect, it } from 'vitest'
import { BUFFER_WAIT_SHRINK_MS, ClaimSizer } from '../src/claim-sizer.js'
import { Wakeup } from '../src/wakeup.js'

// Pure parts of the claim loop: no database, no Worker.

describe('ClaimSizer', () => {
  it('starts at max(concurrency, 10), capped by batchSize', () => {
    expect(new ClaimSizer(4, 1000).size).toBe(10)
    expect(new ClaimSizer(50, 1000).size).toBe(50)
    expect(new ClaimSizer(50, 20).size).toBe(20)
    expect(new ClaimSizer(50, 1000).lowWater).toBe(25)
  })

  it('doubles up to batchSize when handlers ran dry, and halves down to its minimum when jobs waited in the buffer', () => {
    const s = new ClaimSizer(10, 100)
    s.grow()
    s.grow()
    expect(s.size).toBe(40)
    s.grow()
    s.grow()
    expect(s.size).toBe(100)
    s.started(BUFFER_WAIT_SHRINK_MS)
    expect(s.size).toBe(100)
    s.started(BUFFER_WAIT_SHRINK_MS + 1)
    expect(s.size).toBe(50)
    for (let i = 0; i < 10; i++) s.started(10_000)
    expect(s.size).toBe(s.min)
  })

  it('gives room for free slots plus one claim, less what runs, waits, or is unrecorded beyond two completion batches', () => {
    const s = new ClaimSizer(10, 1000)
    expect(s.room({ inFlight: 0, buffered: 0, unrecorded: 0, completeBatchSize: 500 })).toBe(20)
    expect(s.room({ inFlight: 10, buffered: 4, unrecorded: 1000, completeBatchSize: 500 })).toBe(6)
    expect(s.room({ inFlight: 10, buffered: 4, unrecorded: 1006, completeBatchSize: 500 })).toBe(0)
    expect(s.room({ inFlight: 10, buffered: 10, unrecorded: 0, completeBatchSize: 500 })).toBe(0)
  })
})

describe('Wakeup', () => {
  it('resolves a wait at once when woken, and remembers a wake that came with no waiter (once)', async () => {
    const w = new Wakeup()
    const started = performance.now()
    const waiting = w.wait(10_000)
    w.wake()
    await waiting
    w.wake()
    await w.wait(10_000)
    expect(performance.now() - started).toBeLessThan(1_000)
    const timedOut = performance.now()
    await w.wait(30)
    expect(performance.now() - timedOut).toBeGreaterThanOrEqual(25)
  })
})
