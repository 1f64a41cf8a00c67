import { LATENCY_BUCKET_COUNT, LATENCY_BUCKETS_PER_DOUBLING, latencyBucketValue } from '@pgqueue/core/internal'

/**
 * Upper bounds, in seconds, of the Prometheus buckets: every power of two milliseconds from 1 ms to
 * 2^26 ms (about 18.6 hours). Each is a boundary of the rollups' log buckets (4 per doubling), so the
 * cumulative counts are exact, not interpolated.
 */
export const HISTOGRAM_BOUNDS_S: readonly number[] = Array.from({ length: 27 }, (_, k) => 2 ** k / 1000)

/** Cumulative counts per bound (then +Inf) and an estimated sum (seconds) of a rollup histogram. */
export function toPrometheusBuckets(counts: readonly number[]): { cumulative: number[]; count: number; sumS: number } {
  const cumulative: number[] = []
  let seen = 0
  let next = 0
  let sumMs = 0
  for (let k = 0; k < HISTOGRAM_BOUNDS_S.length; k++) {
    // Bound 2^k ms closes rollup bucket 4k: bucket i holds [2^((i-1)/4), 2^(i/4)) ms, bucket 0 under 1 ms.
    const last = LATENCY_BUCKETS_PER_DOUBLING * k
    for (; next <= last && next < counts.length; next++) {
      seen += counts[next] ?? 0
      sumMs += (counts[next] ?? 0) * latencyBucketValue(next)
    }
    cumulative.push(seen)
  }
  for (; next < Math.min(counts.length, LATENCY_BUCKET_COUNT); next++) {
    seen += counts[next] ?? 0
    sumMs += (counts[next] ?? 0) * latencyBucketValue(next)
  }
  return { cumulative, count: seen, sumS: sumMs / 1000 }
}

/** Adds a rollup histogram into an accumulator, element by element. */
export function addInto(into: number[], counts: readonly number[]): void {
  for (let i = 0; i < counts.length; i++) into[i] = (into[i] ?? 0) + (counts[i] ?? 0)
}

/** One labelled sample as prom-client's Registry reads it from a metric's get(). */
export interface Sample {
  metricName?: string
  labels: Record<string, string | number>
  value: number
}

/**
 * A histogram whose buckets are filled from database rollups rather than observe(): prom-client's
 * Histogram cannot take counts per bucket, so this object offers what its Registry reads (name, help,
 * type, aggregator, get(), reset()). `read()` gives the current cumulative histograms per label set.
 */
export class RollupHistogram {
  readonly type = 'histogram'
  readonly aggregator = 'sum'

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly read: () => Promise<Map<string, { labels: Record<string, string>; counts: number[] }>>,
  ) {}

  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Sample[] }> {
    const values: Sample[] = []
    for (const { labels, counts } of (await this.read()).values()) {
      const b = toPrometheusBuckets(counts)
      HISTOGRAM_BOUNDS_S.forEach((le, k) => values.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le }, value: b.cumulative[k]! }))
      values.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le: '+Inf' }, value: b.count })
      values.push({ metricName: `${this.name}_sum`, labels, value: b.sumS })
      values.push({ metricName: `${this.name}_count`, labels, value: b.count })
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values }
  }

  /** Registry.resetMetrics() calls this; the totals live in the collector, so there is nothing to reset here. */
  reset(): void {}
}
