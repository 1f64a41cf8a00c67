/**
 * Log-spaced latency histograms, as stored by the stats rollups (migration 9, `latency_bucket()`).
 *
 * Bucket 0 counts durations under 1 ms; bucket i (1 to 106) counts [2^((i-1)/4), 2^(i/4)) ms, so each
 * bucket is 2^(1/4) (about 19 %) wider than the one below; bucket 107 counts 2^(106/4) ms (about
 * 26.4 hours) and more. A histogram is an array of counts indexed by bucket; adding arrays element by
 * element merges them.
 *
 * Error bound of latencyPercentile(): a value in bucket i is estimated by the bucket's geometric
 * middle, within a factor 2^(1/8) of the true value (relative error at most 9.05 %); the percentile is
 * interpolated between two such estimates exactly as percentile_cont interpolates between two values,
 * so it too is within 9.05 % of percentile_cont for durations from 1 ms to about 26 hours. Under 1 ms
 * the estimate is 0.5 ms (absolute error at most 0.5 ms); over 26.4 hours it is 26.4 hours.
 */
export const LATENCY_BUCKETS_PER_DOUBLING = 4

/** Number of buckets: under 1 ms, 106 log-spaced ones, and one open-ended at the top. */
export const LATENCY_BUCKET_COUNT = 108

/** Largest relative error of latencyPercentile() for durations from 1 ms to the top bucket. */
export const LATENCY_RELATIVE_ERROR = 2 ** (1 / (2 * LATENCY_BUCKETS_PER_DOUBLING)) - 1

/** The bucket of a duration in ms (the same as the SQL function latency_bucket()). */
export function latencyBucket(ms: number): number {
  if (!(ms >= 1)) return 0
  return Math.min(LATENCY_BUCKET_COUNT - 1, 1 + Math.floor((LATENCY_BUCKETS_PER_DOUBLING * Math.log(ms)) / Math.log(2)))
}

/** The value a bucket stands for: its geometric middle (0.5 ms for bucket 0, the lower bound for the top one). */
export function latencyBucketValue(bucket: number): number {
  if (bucket <= 0) return 0.5
  if (bucket >= LATENCY_BUCKET_COUNT - 1) return 2 ** ((LATENCY_BUCKET_COUNT - 2) / LATENCY_BUCKETS_PER_DOUBLING)
  return 2 ** ((bucket - 0.5) / LATENCY_BUCKETS_PER_DOUBLING)
}

/**
 * The p-th percentile (0 to 1) of a histogram, interpolated like percentile_cont: rank p * (n - 1)
 * between the estimates of the two neighbouring values. 0 for an empty histogram.
 */
export function latencyPercentile(counts: readonly number[], p: number): number {
  const n = counts.reduce((a, b) => a + b, 0)
  if (n === 0) return 0
  const rank = p * (n - 1)
  const k = Math.floor(rank)
  const lo = valueAtRank(counts, k)
  if (rank === k || k + 1 >= n) return lo
  return lo + (rank - k) * (valueAtRank(counts, k + 1) - lo)
}

/** Estimate of the k-th smallest value (0-based). */
function valueAtRank(counts: readonly number[], k: number): number {
  let seen = 0
  for (let i = 0; i < counts.length; i++) {
    seen += counts[i] ?? 0
    if (seen > k) return latencyBucketValue(i)
  }
  return latencyBucketValue(counts.length - 1)
}
