export { Stats, TenantStats, type HistogramOptions, type LatencyOptions, type QueuesStatsOptions } from './stats.js'
export { MAX_BUCKETS, MAX_WINDOW_MS, type ResolvedStatsOptions, type StatsOptions } from './options.js'
export type { FairnessStats, HistogramBucket, HistogramPoint, Percentiles, QueueLatency, QueueSchedules, QueueStats, ScheduleStats } from './types.js'
