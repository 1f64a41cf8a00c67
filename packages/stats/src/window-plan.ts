/** A range of finish times, [from, to); `to` null means open-ended (up to now). */
export interface TimeRange {
  from: Date
  to: Date | null
}

/** Where each part of a window is read from: raw history, minute rollups or hour rollups. */
export interface WindowPlan {
  raw: TimeRange[]
  minutes: TimeRange[]
  hours: TimeRange | null
}

/** What the rollups hold, and which of them may be used. */
export interface RollupCoverage {
  /** Every history row finished before this is in the rollups (a whole minute). */
  rolledUpTo: Date
  /** Minute rows are complete from here (null: none). */
  minutesFrom: Date | null
  /** Whether hour rows may be used (not for minute buckets, nor for zones whose buckets are not whole UTC hours). */
  hours: boolean
}

const MINUTE = 60_000
const HOUR = 3_600_000
const floorTo = (ms: number, unit: number): number => Math.floor(ms / unit) * unit
const ceilTo = (ms: number, unit: number): number => Math.ceil(ms / unit) * unit

/**
 * Splits [from, to) so each part is read from the cheapest exact source: whole hours from hour rows,
 * whole minutes from minute rows, and from raw history only the pieces the rollups cannot answer
 * exactly: the partial minute at each edge, the tail after the watermark, and minutes older than the
 * minute rows. Hour row H holds [H, min(H + 1 h, rolledUpTo)), so the hour of the watermark counts up
 * to the watermark only. Every instant of [from, to) lands in exactly one part.
 */
export function planWindow(from: Date, to: Date | null, rollups: RollupCoverage): WindowPlan {
  const f = from.getTime()
  const wm = rollups.rolledUpTo.getTime()
  const end = to === null ? wm : Math.min(to.getTime(), wm)
  const m0 = ceilTo(f, MINUTE)
  const mEnd = floorTo(end, MINUTE)
  if (m0 >= mEnd) return { raw: [{ from, to }], minutes: [], hours: null }
  const raw: [number, number | null][] = []
  const minutes: [number, number][] = []
  let hours: TimeRange | null = null
  if (f < m0) raw.push([f, m0])
  const h0 = ceilTo(m0, HOUR)
  const hEnd = end === wm ? end : floorTo(end, HOUR)
  if (rollups.hours && h0 < hEnd) {
    if (m0 < h0) minutes.push([m0, h0])
    hours = { from: new Date(h0), to: new Date(hEnd) }
    const covered = end === wm ? end : hEnd
    if (covered < mEnd) minutes.push([covered, mEnd])
  } else minutes.push([m0, mEnd])
  if (mEnd < end) raw.push([mEnd, end])
  if (to === null || to.getTime() > end) raw.push([end, to === null ? null : to.getTime()])
  // Minutes older than the minute rows come from raw history.
  const kept: [number, number][] = []
  const mf = rollups.minutesFrom?.getTime() ?? Infinity
  for (const [a, b] of minutes) {
    if (a < mf) raw.push([a, Math.min(b, mf)])
    if (b > mf) kept.push([Math.max(a, mf), b])
  }
  return { raw: merge(raw).map(([a, b]) => ({ from: new Date(a), to: b === null ? null : new Date(b) })), minutes: kept.map(([a, b]) => ({ from: new Date(a), to: new Date(b) })), hours }
}

/** Sorts ranges and joins those that touch. */
function merge(ranges: [number, number | null][]): [number, number | null][] {
  const out: [number, number | null][] = []
  for (const r of [...ranges].sort((x, y) => x[0] - y[0])) {
    const last = out[out.length - 1]
    if (last && last[1] !== null && last[1] >= r[0]) last[1] = r[1] === null ? null : Math.max(last[1], r[1])
    else out.push([r[0], r[1]])
  }
  return out
}
