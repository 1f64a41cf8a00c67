const formatters = new Map<string, Intl.DateTimeFormat>()

/** The UTC offset of an IANA `timezone` at the instant `at` (ms since the epoch), in minutes. */
export function timeZoneOffsetMinutes(timezone: string, at: number): number {
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
