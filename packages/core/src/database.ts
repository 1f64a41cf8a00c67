import type { ColumnType, Generated } from 'kysely'

/** A timestamp column: read as Date, written as Date or ISO string. */
type Timestamp = ColumnType<Date, Date | string, Date | string>
type DefaultedTimestamp = ColumnType<Date, Date | string | undefined, Date | string>
type Json = ColumnType<unknown, string, string>

/** The states of a live job. See docs/ARCHITECTURE.md for the transitions. */
export type JobState = 'scheduled' | 'pending' | 'held' | 'running' | 'waiting'
/** The states of a finished job. */
export type HistoryState = 'completed' | 'failed' | 'cancelled'

/** pgqueue.jobs: one row per job that has not finished. */
export interface JobsTable {
  tenant_id: string
  id: Generated<string>
  queue: string
  type: string
  key: string | null
  state: JobState
  priority: Generated<number>
  /** Fair virtual time; set while pending. Hidden from the user role. */
  vt: ColumnType<string | null, string | number | bigint | null, string | number | bigint | null>
  run_at: DefaultedTimestamp
  payload: Buffer | null
  payload_type: string | null
  target: Json | null
  attempt: Generated<number>
  max_attempts: Generated<number>
  retry_policy: Json | null
  lease_owner: string | null
  lease_expires_at: Timestamp | null
  cancel_requested: Generated<boolean>
  last_error: Json | null
  schedule_id: string | null
  retry_of: string | null
  created_at: DefaultedTimestamp
  updated_at: DefaultedTimestamp
  started_at: Timestamp | null
  /** The flow the job belongs to, or null (migration 0019). */
  flow_id: string | null
  /** The pushing span's W3C carrier (StoredTraceContext), or null when the producer traced nothing. */
  trace_context: Generated<Json | null>
  /** Tokens the job takes from its rate limits when released (migration 18). */
  cost: Generated<number>
}

/** pgqueue.job_history: finished jobs, partitioned by range on finished_at. */
export interface JobHistoryTable {
  tenant_id: string
  id: string
  queue: string
  type: string
  key: string | null
  state: HistoryState
  priority: Generated<number>
  payload: Buffer | null
  payload_type: string | null
  target: Json | null
  result: Buffer | null
  result_type: string | null
  error: Json | null
  attempt: number
  max_attempts: number
  schedule_id: string | null
  retry_of: string | null
  worker_id: string | null
  created_at: Timestamp
  run_at: Timestamp
  started_at: Timestamp | null
  finished_at: DefaultedTimestamp
  flow_id: string | null
  /** The live job's trace_context, copied as it finished. */
  trace_context: Generated<Json | null>
}

/** The states of a flow node: waiting for parents, live (in the jobs table), or finished. */
export type FlowNodeState = 'waiting' | 'live' | HistoryState

/** pgqueue.flow_nodes: one row per flow job, kept after it finishes (outcome and result). */
export interface FlowNodesTable {
  tenant_id: string
  id: string
  flow_id: string
  ref: string
  queue: string
  type: string
  parents_left: Generated<number>
  run_on_parent_failure: Generated<boolean>
  state: FlowNodeState
  result: Buffer | null
  result_type: string | null
  error: Json | null
  created_at: DefaultedTimestamp
  finished_at: Timestamp | null
}

/** pgqueue.flow_edges: parent -> child within a flow. */
export interface FlowEdgesTable {
  tenant_id: string
  parent_id: string
  child_id: string
}

/** pgqueue.queues: settings per (tenant, queue). */
export interface QueuesTable {
  tenant_id: string
  queue: string
  paused: Generated<boolean>
  max_concurrency: number | null
  retry_policy: Json | null
  display_name: string | null
  /** False: the Worker deletes completed jobs without a history row (counted in completion_counts). */
  keep_completed: Generated<boolean>
  created_at: DefaultedTimestamp
  updated_at: DefaultedTimestamp
}

/** pgqueue.completion_counts: completions of queues that keep no completed history, one row per
 *  (tenant, queue) per completion statement. */
export interface CompletionCountsTable {
  tenant_id: string
  queue: string
  finished_at: DefaultedTimestamp
  /** One job id of the group (unique per tenant). */
  id: string
  completed: number
  /** latency_bucket() of each completion's wait and run (see latency-histogram.ts). */
  wait_buckets: number[]
  run_buckets: number[]
}

/** pgqueue.queue_clocks: last fair virtual time handed out per (tenant, queue). */
export interface QueueClocksTable {
  tenant_id: string
  queue: string
  last_vt: ColumnType<string, string | number | bigint, string | number | bigint>
  /** The queue's head as the pair's last advance read it; its next advance reads from there (0022). */
  head_vt: ColumnType<string | null, string | number | bigint | null | undefined, string | number | bigint | null>
  /** When head_vt was read (the server's clock). */
  head_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>
}

/** pgqueue.queue_defaults: an operator's retry policy per queue, for every tenant. */
export interface QueueDefaultsTable {
  queue: string
  retry_policy: unknown
  updated_at: DefaultedTimestamp
}

/** pgqueue.fair_weights: operator-set weights per tenant (queue '') or per (tenant, queue). */
export interface FairWeightsTable {
  tenant_id: string
  queue: Generated<string>
  weight: number
  updated_at: DefaultedTimestamp
}

/** pgqueue.fair_blocks: (tenant, queue) pairs backed off by a handler until a time. */
export interface FairBlocksTable {
  tenant_id: string
  queue: string
  until: Date
}

/** pgqueue.rate_limits: operator token buckets per (tenant, queue); tenant_id '' is the queue-wide one. */
export interface RateLimitsTable {
  tenant_id: string
  queue: string
  capacity: number
  rate: number
  tokens: number
  unclaimed: Generated<number>
  refilled_at: DefaultedTimestamp
  updated_at: DefaultedTimestamp
}

/** pgqueue.schedules: cron or interval schedules with their job template. */
export interface SchedulesTable {
  tenant_id: string
  id: Generated<string>
  key: string
  queue: string
  type: string
  cron: string | null
  timezone: string | null
  every_ms: ColumnType<string | null, number | string | null, number | string | null>
  anchor_at: Timestamp | null
  missed_policy: ColumnType<'fire_once' | 'skip', 'fire_once' | 'skip' | undefined, 'fire_once' | 'skip'>
  payload: Buffer | null
  payload_type: string | null
  target: Json | null
  priority: Generated<number>
  retry_policy: Json | null
  paused: Generated<boolean>
  next_run_at: Timestamp | null
  last_run_at: Timestamp | null
  created_at: DefaultedTimestamp
  updated_at: DefaultedTimestamp
}

/** pgqueue.worker_metadata: per-tenant key/JSON store. */
export interface WorkerMetadataTable {
  tenant_id: string
  key: string
  value: Json
  updated_at: DefaultedTimestamp
}

/** pgqueue.nodes: live component instances. */
export interface NodesTable {
  node_id: string
  kind: string
  started_at: DefaultedTimestamp
  heartbeat_at: DefaultedTimestamp
  info: Json | null
}

/** pgqueue.history_rollup_minutes and history_rollup_hours: finished jobs per bucket and queue, all tenants. */
export interface HistoryRollupTable {
  /** Start of the minute or hour (UTC). */
  bucket: Timestamp
  queue: string
  completed: number
  failed: number
  cancelled: number
  last_failure_at: Timestamp | null
  /** Latency histograms (see latency-histogram.ts): run_at to started_at, started_at to finished_at. */
  wait_hist: number[]
  run_hist: number[]
}

/** pgqueue.stats_rollup_state: the single row saying how far the rollups and the live snapshot reach. */
export interface StatsRollupStateTable {
  id: Generated<boolean>
  /** Every history row finished before this is in the rollups; null until the first rollup. */
  rolled_up_to: Timestamp | null
  /** Minute rollups are complete from here on. */
  minutes_from: Timestamp | null
  /** When live_counts was taken; null until the first snapshot. */
  live_counts_at: Timestamp | null
  updated_at: DefaultedTimestamp
}

/** pgqueue.live_counts: a snapshot of live counts per queue, all tenants. */
export interface LiveCountsTable {
  queue: string
  pending: number
  scheduled: number
  running: number
  retrying: number
  waiting: Generated<number>
  oldest_pending_run_at: Timestamp | null
}

/** pgqueue.tenant_secret: the one row holding the tenant secret; only the schema owner can read it. */
export interface TenantSecretTable {
  singleton: Generated<boolean>
  secret: string
  /** The secret's HMAC keys (padded, xored with ipad and opad), derived once by set_tenant_secret(). */
  inner_key: Buffer
  outer_key: Buffer
  updated_at: DefaultedTimestamp
}

/** The Kysely database interface for a pgqueue schema; use with `db.withSchema(schema)`. */
export interface Database {
  jobs: JobsTable
  job_history: JobHistoryTable
  queues: QueuesTable
  queue_clocks: QueueClocksTable
  fair_weights: FairWeightsTable
  fair_blocks: FairBlocksTable
  queue_defaults: QueueDefaultsTable
  rate_limits: RateLimitsTable
  schedules: SchedulesTable
  worker_metadata: WorkerMetadataTable
  nodes: NodesTable
  history_rollup_minutes: HistoryRollupTable
  history_rollup_hours: HistoryRollupTable
  stats_rollup_state: StatsRollupStateTable
  completion_counts: CompletionCountsTable
  live_counts: LiveCountsTable
  tenant_secret: TenantSecretTable
  flow_nodes: FlowNodesTable
  flow_edges: FlowEdgesTable
}
