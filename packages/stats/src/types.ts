/** Counts and ages of one queue. Live counts are now; finished counts are within the window. */
export interface QueueStats {
  queue: string
  /** Due and waiting: 'pending', 'held' (paused or capped queue), and 'scheduled' whose run_at has passed. */
  pending: number
  /** Waiting for a run_at in the future (delays and retry backoff). */
  scheduled: number
  /** Leased by a worker. */
  running: number
  /** Waiting (not running) after at least one attempt: retries. Also counted in pending or scheduled. */
  retrying: number
  /** Flow jobs waiting for their parents to finish (see flows); in no other count. */
  waiting: number
  /** Finished in the window, by outcome. */
  completed: number
  failed: number
  cancelled: number
  /** Milliseconds since the run_at of the oldest due waiting job; null when nothing is due. */
  oldestPendingAgeMs: number | null
  /** Failed in the last 24 hours, whatever the window. */
  failedLast24h: number
  /** Finish time of the latest failure within the last max(window, 24 h); null when none. */
  lastFailureAt: Date | null
  /**
   * Global calls only: set when the live counts (pending, scheduled, running, retrying, oldest pending)
   * come from Maintenance's snapshot taken at this time rather than from a count made now.
   */
  liveCountsAt?: Date
}

/** Buckets of a histogram. */
export type HistogramBucket = 'minute' | 'hour' | 'day'

/** Finished jobs of one bucket, [at, at + bucket). */
export interface HistogramPoint {
  at: Date
  completed: number
  failed: number
  cancelled: number
}

/** Percentiles of a duration, in milliseconds. */
export interface Percentiles {
  p50: number
  p95: number
  p99: number
}

/** Latency of one queue over a window, from jobs that ran (completed or failed). */
export interface QueueLatency {
  queue: string
  /** Jobs measured. */
  count: number
  /** run_at to started_at: how long a due job waited for a worker. */
  waitMs: Percentiles
  /** started_at to finished_at: how long the handler ran (the last attempt). */
  runMs: Percentiles
}

/** Schedules of one queue. */
export interface QueueSchedules {
  queue: string
  total: number
  paused: number
  /** Earliest next run among schedules that are not paused. */
  nextDueAt: Date | null
  lastRunAt: Date | null
}

/** Schedules summary, overall and per queue. */
export interface ScheduleStats extends Omit<QueueSchedules, 'queue'> {
  queues: QueueSchedules[]
}

/** Stats.fairness(): operator weights, rate limits, running back-offs and recent shares (issue 18). */
export interface FairnessStats {
  weights: { tenantId: string; queue: string | null; weight: number }[]
  backOffs: { tenantId: string; queue: string; until: Date }[]
  /** Token buckets (tenantId null: the queue's, shared by every tenant) with the tokens they hold now. */
  rateLimits: { tenantId: string | null; queue: string; capacity: number; ratePerSec: number; tokens: number }[]
  /**
   * Jobs finished per tenant over the last `windowMs` (from history, every queue) and each one's share
   * of all tenants' finished jobs (0 to 1); with `tenantId`, that tenant's row only.
   */
  shares: { tenantId: string; jobs: number; share: number }[]
  windowMs: number
}
