import { describe, expect, it } from 'vitest'
import { LATENCY_BUCKET_COUNT, LATENCY_RELATIVE_ERROR, latencyBucket, latencyBucketValue, latencyPercentile } from '@pgqueue/core/internal'

/** percentile_cont over raw values, for comparison. */
function exact(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b)
  const r = p * (s.length - 1)
  const k = Math.floor(r)
  return k + 1 < s.length ? s[k]! + (r - k) * (s[k + 1]! - s[k]!) : s[k]!
}

describe('latency histograms', () => {
  it('puts each value in a bucket whose middle is within the stated error', () => {
    expect(latencyBucket(0)).toBe(0)
    expect(latencyBucket(0.99)).toBe(0)
    expect(latencyBucket(1)).toBe(1)
    expect(latencyBucket(1e12)).toBe(LATENCY_BUCKET_COUNT - 1)
    for (let ms = 1; ms < 9e7; ms *= 1.037) {
      const v = latencyBucketValue(latencyBucket(ms))
      expect(Math.abs(v - ms) / ms).toBeLessThanOrEqual(LATENCY_RELATIVE_ERROR + 1e-12)
    }
    expect(LATENCY_RELATIVE_ERROR).toBeCloseTo(0.0905, 3)
  })

  it('gives percentiles within the error of percentile_cont', () => {
    let seed = 7
    const random = () => ((seed = (seed * 48271) % 2147483647) / 2147483647)
    for (const n of [1, 2, 3, 10, 1000]) {
      const values = Array.from({ length: n }, () => 1 + random() * random() * 100_000)
      const counts = new Array<number>(LATENCY_BUCKET_COUNT).fill(0)
      for (const v of values) counts[latencyBucket(v)]! += 1
      for (const p of [0.5, 0.95, 0.99]) {
        const e = exact(values, p)
        expect(Math.abs(latencyPercentile(counts, p) - e) / e, `n=${n} p=${p}`).toBeLessThanOrEqual(LATENCY_RELATIVE_ERROR + 1e-12)
      }
    }
    expect(latencyPercentile([], 0.5)).toBe(0)
  })
})
