const DAY = 86_400_000
const formatters = new Map<string, Intl.DateTimeFormat>()

/** The UTC offset of `timezone` at `at`, in minutes. */
function offsetMinutes(timezone: string, at: number): number {
  let f = formatters.get(timezone)
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: timezone, timeZoneName: 'longOffset' })
    formatters.set(timezone, f)
  }
  const name = f.formatToParts(at).find((p) => p.type === 'timeZoneName')?.value ?? 'GMT'
  const m = /GMT([+-])(\d{2}):?(\d{2})?/.exec(name)
  if (!m) return 0
  return (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3] ?? 0))
}

/**
 * True when every offset `timezone` has over [from, to] is a whole number of hours, so its hour and
 * day buckets start on UTC hours and can be built from hour rollups. Checked at every UTC midnight and
 * at both ends: an offset in force for less than a day between two checks would be missed, which no
 * zone in use has.
 */
export function hasWholeHourOffsets(timezone: string, from: Date, to: Date): boolean {
  if (timezone === 'UTC' || timezone === 'Etc/UTC') return true
  for (let t = from.getTime(); ; t = Math.min(t + DAY, to.getTime())) {
    if (offsetMinutes(timezone, t) % 60 !== 0) return false
    if (t >= to.getTime()) return true
  }
}
