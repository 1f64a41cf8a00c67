export { PgQueueMetrics, registerPgQueueMetrics, type ScheduleRunnerLike, type SchedulerLike, type WorkerLike } from './metrics.js'
export { PROMETHEUS_DEFAULTS, resolvePrometheusOptions, type PrometheusOptions, type ResolvedPrometheusOptions } from './options.js'
export { HISTOGRAM_BOUNDS_S, RollupHistogram, toPrometheusBuckets } from './rollup-histogram.js'
