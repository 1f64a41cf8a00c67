/** Median, min and max of the repetitions that produced a number. */
export interface Summary {
  median: number
  min: number
  max: number
  n: number
}

export function summarize(values: number[]): Summary | undefined {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return undefined
  const mid = Math.floor(v.length / 2)
  const median = v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2
  return { median, min: v[0]!, max: v.at(-1)!, n: v.length }
}

/** Median of a numeric extra field across repetitions. */
export function medianOf(values: unknown[]): number | undefined {
  return summarize(values.filter((x): x is number => typeof x === 'number'))?.median
}
