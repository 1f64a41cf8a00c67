import { describe, expect, it } from 'vitest'
import { PgQueueValidationError, nextRunAfter, parseDuration, parseSchedule } from '@pgqueue/core/internal'

function fieldOf(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (e) {
    if (e instanceof PgQueueValidationError) return e.field
    throw e
  }
  return undefined
}

describe('parseDuration', () => {
  it('reads units and composites', () => {
    expect(parseDuration('15m')).toBe(900_000)
    expect(parseDuration('1h30m')).toBe(5_400_000)
    expect(parseDuration('500ms')).toBe(500)
    expect(parseDuration('2d')).toBe(172_800_000)
    expect(parseDuration(1234)).toBe(1234)
  })
  it('rejects garbage', () => {
    expect(fieldOf(() => parseDuration('soon'))).toBe('duration')
    expect(fieldOf(() => parseDuration(''))).toBe('duration')
    expect(fieldOf(() => parseDuration(1.5))).toBe('duration')
  })
})

describe('parseSchedule', () => {
  it('accepts cron with a zone and intervals', () => {
    expect(parseSchedule({ cron: '0 3 * * *', timezone: 'Europe/Warsaw' })).toEqual({ kind: 'cron', cron: '0 3 * * *', timezone: 'Europe/Warsaw' })
    expect(parseSchedule({ cron: '*/5 * * * *' })).toEqual({ kind: 'cron', cron: '*/5 * * * *', timezone: 'UTC' })
    expect(parseSchedule({ every: '15m' })).toEqual({ kind: 'interval', everyMs: 900_000 })
  })
  it('rejects bad input, naming the field', () => {
    expect(fieldOf(() => parseSchedule({ cron: 'not a cron' }))).toBe('schedule.cron')
    expect(fieldOf(() => parseSchedule({ cron: '61 * * * *' }))).toBe('schedule.cron')
    expect(fieldOf(() => parseSchedule({ cron: '0 3 * * *', timezone: 'Mars/Olympus' }))).toBe('schedule.timezone')
    expect(fieldOf(() => parseSchedule({ every: 0 }))).toBe('schedule.every')
    expect(fieldOf(() => parseSchedule({ every: -5000 }))).toBe('schedule.every')
    expect(fieldOf(() => parseSchedule({ every: '10ms' }))).toBe('schedule.every')
    expect(fieldOf(() => parseSchedule({ cron: '* * * * *', every: '1m' }))).toBe('schedule')
    expect(fieldOf(() => parseSchedule('daily'))).toBe('schedule')
  })
  it('takes 5 or 6 fields or an @macro, and refuses the 4 and 7 field strings cron-parser would read oddly', () => {
    expect(parseSchedule({ cron: '*/10 * * * * *' })).toMatchObject({ kind: 'cron' })
    expect(parseSchedule({ cron: '@daily' })).toMatchObject({ kind: 'cron', cron: '@daily' })
    for (const cron of ['*/5 * * *', '0 3 *', '0 0 3 * * * *']) {
      expect(() => parseSchedule({ cron }), cron).toThrow(/must have 5 fields .* or 6/)
    }
  })
})

describe('nextRunAfter', () => {
  it('keeps intervals on their anchor grid whatever the runner delay', () => {
    const s = parseSchedule({ every: '1m' })
    const anchor = new Date('2026-01-01T00:00:00Z')
    expect(nextRunAfter(s, new Date('2026-01-01T00:00:00Z'), anchor).toISOString()).toBe('2026-01-01T00:01:00.000Z')
    expect(nextRunAfter(s, new Date('2026-01-01T00:05:37.123Z'), anchor).toISOString()).toBe('2026-01-01T00:06:00.000Z')
    expect(nextRunAfter(s, new Date('2025-12-31T23:00:00Z'), anchor).toISOString()).toBe('2026-01-01T00:00:00.000Z')
  })

  it('follows the zone for cron', () => {
    const s = parseSchedule({ cron: '0 3 * * *', timezone: 'Europe/Warsaw' })
    // 03:00 in Warsaw in winter is 02:00 UTC, in summer 01:00 UTC.
    expect(nextRunAfter(s, new Date('2026-01-10T12:00:00Z')).toISOString()).toBe('2026-01-11T02:00:00.000Z')
    expect(nextRunAfter(s, new Date('2026-07-10T12:00:00Z')).toISOString()).toBe('2026-07-11T01:00:00.000Z')
  })

  it('runs a 02:30 job once on the spring-forward day (the hour 02:00-03:00 does not exist)', () => {
    // Europe/Warsaw jumps from 02:00 CET to 03:00 CEST on 2026-03-29.
    const s = parseSchedule({ cron: '30 2 * * *', timezone: 'Europe/Warsaw' })
    const runs: string[] = []
    let at = new Date('2026-03-27T12:00:00Z')
    for (let i = 0; i < 4; i++) {
      at = nextRunAfter(s, at)
      runs.push(at.toISOString())
    }
    // 28th 02:30 CET = 01:30Z; the 29th has no 02:30, so it runs once at the next valid instant; 30th 02:30 CEST = 00:30Z.
    expect(runs[0]).toBe('2026-03-28T01:30:00.000Z')
    expect(runs.filter((r) => r.startsWith('2026-03-29')).length).toBeLessThanOrEqual(1)
    expect(runs).toContain('2026-03-30T00:30:00.000Z')
    expect(new Set(runs).size).toBe(runs.length)
  })

  it('runs a 01:30 job once on the fall-back day (the hour 02:00-03:00 repeats in Warsaw)', () => {
    // Warsaw falls back from 03:00 CEST to 02:00 CET on 2026-10-25; 02:30 happens twice, 01:30 once.
    const s = parseSchedule({ cron: '30 2 * * *', timezone: 'Europe/Warsaw' })
    const runs: string[] = []
    let at = new Date('2026-10-24T12:00:00Z')
    for (let i = 0; i < 3; i++) {
      at = nextRunAfter(s, at)
      runs.push(at.toISOString())
    }
    expect(runs.filter((r) => r.startsWith('2026-10-25')).length).toBe(1)
    expect(runs[0]).toBe('2026-10-25T00:30:00.000Z') // first occurrence: 02:30 CEST
    expect(runs[1]).toBe('2026-10-26T01:30:00.000Z')
  })

  it('gives the same runs when counting starts inside a daylight-saving change', () => {
    // A schedule created or resumed during the change counts from there, not from its last run.
    const spring = parseSchedule({ cron: '30 2 * * *', timezone: 'America/New_York' })
    // 2027-03-14: 02:00 EST jumps to 03:00 EDT; the 02:30 run is shifted to 03:30 EDT (07:30Z).
    for (const after of ['2027-03-14T06:59:00Z', '2027-03-14T07:00:00Z', '2027-03-14T07:10:00Z', '2027-03-14T07:29:59Z']) {
      expect(nextRunAfter(spring, new Date(after)).toISOString(), after).toBe('2027-03-14T07:30:00.000Z')
    }
    expect(nextRunAfter(spring, new Date('2027-03-14T07:30:00Z')).toISOString()).toBe('2027-03-15T06:30:00.000Z')
    const fall = parseSchedule({ cron: '30 1 * * *', timezone: 'America/New_York' })
    // 2027-11-07: 02:00 EDT falls back to 01:00 EST; 01:30 runs once, at 01:30 EDT (05:30Z).
    expect(nextRunAfter(fall, new Date('2027-11-07T05:10:00Z')).toISOString()).toBe('2027-11-07T05:30:00.000Z')
    for (const after of ['2027-11-07T05:30:00Z', '2027-11-07T06:10:00Z', '2027-11-07T06:29:59Z']) {
      expect(nextRunAfter(fall, new Date(after)).toISOString(), after).toBe('2027-11-08T06:30:00.000Z')
    }
    // Hourly runs every real hour through the repeated one, as when counted from the day before.
    const hourly = parseSchedule({ cron: '0 * * * *', timezone: 'America/New_York' })
    expect(nextRunAfter(hourly, new Date('2027-11-07T05:20:00Z')).toISOString()).toBe('2027-11-07T06:00:00.000Z')
    expect(nextRunAfter(hourly, new Date('2027-03-14T06:20:00Z')).toISOString()).toBe('2027-03-14T07:00:00.000Z')
  })
})
