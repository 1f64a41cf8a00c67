import { describe, expect, it } from 'vitest'
import { planWindow, type TimeRange, type WindowPlan } from '../src/window-plan.js'

const d = (s: string): Date => new Date(`2030-01-01T${s}Z`)
const r = (a: string, b: string | null): TimeRange => ({ from: d(a), to: b === null ? null : d(b) })

/** Every sampled instant of [from, to) falls in exactly one part of the plan. */
function expectPartition(plan: WindowPlan, from: Date, to: Date, wm: Date): void {
  const parts = [...plan.raw, ...plan.minutes, ...(plan.hours ? [{ from: plan.hours.from, to: plan.hours.to!.getTime() === wm.getTime() ? wm : plan.hours.to }] : [])]
  for (let t = from.getTime(); t < to.getTime(); t += 7_919) {
    const n = parts.filter((p) => p.from.getTime() <= t && (p.to === null || t < p.to.getTime())).length
    expect(n, new Date(t).toISOString()).toBe(1)
  }
}

describe('planWindow', () => {
  const rollups = { rolledUpTo: d('12:20:00'), minutesFrom: d('00:00:00'), hours: true }

  it('reads whole hours from hours, edge minutes from minutes, partial minutes and the tail raw', () => {
    const plan = planWindow(d('09:30:30'), null, rollups)
    expect(plan).toEqual({
      raw: [r('09:30:30', '09:31:00'), r('12:20:00', null)],
      minutes: [r('09:31:00', '10:00:00')],
      hours: r('10:00:00', '12:20:00'),
    })
    expectPartition(plan, d('09:30:30'), d('13:00:00'), rollups.rolledUpTo)
  })

  it('uses minutes at the end when the range closes before the watermark, raw for the last partial minute', () => {
    const plan = planWindow(d('09:00:00'), d('11:45:10'), rollups)
    expect(plan).toEqual({ raw: [r('11:45:00', '11:45:10')], minutes: [r('11:00:00', '11:45:00')], hours: r('09:00:00', '11:00:00') })
    expectPartition(plan, d('09:00:00'), d('11:45:10'), rollups.rolledUpTo)
  })

  it('falls back to raw where minute rows are gone, and for windows inside the tail', () => {
    const plan = planWindow(d('09:30:00'), null, { ...rollups, minutesFrom: d('09:45:00'), hours: false })
    expect(plan).toEqual({ raw: [r('09:30:00', '09:45:00'), r('12:20:00', null)], minutes: [r('09:45:00', '12:20:00')], hours: null })
    expect(planWindow(d('12:19:30'), null, rollups)).toEqual({ raw: [r('12:19:30', null)], minutes: [], hours: null })
    expect(planWindow(d('09:30:00'), null, { ...rollups, minutesFrom: null })).toEqual({
      raw: [r('09:30:00', '10:00:00'), r('12:20:00', null)], minutes: [], hours: r('10:00:00', '12:20:00'),
    })
  })
})
