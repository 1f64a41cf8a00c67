import { timeZoneOffsetMinutes } from '@pgqueue/core/internal'

const DAY = 86_400_000
/**
 * True when every offset `timezone` has over [from, to] is a whole number of hours, so its hour and
 * day buckets start on UTC hours and can be built from hour rollups. Checked at every UTC midnight and
 * at both ends: an offset in force for less than a day between two checks would be missed, which no
 * zone in use has.
 */
export function hasWholeHourOffsets(timezone: string, from: Date, to: Date): boolean {
  if (timezone === 'UTC' || timezone === 'Etc/UTC') return true
  for (let t = from.getTime(); ; t = Math.min(t + DAY, to.getTime())) {
    if (timeZoneOffsetMinutes(timezone, t) % 60 !== 0) return false
    if (t >= to.getTime()) return true
  }
}
