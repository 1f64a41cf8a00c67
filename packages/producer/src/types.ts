import type { HistoryState, JobPayload, JobState, RegisteredJobType, RetryPolicy, ScheduleSpec } from '@pgqueue/core/internal'
import type { Kysely, Transaction } from 'kysely'
import type pg from 'pg'

/** Bytes, or a string stored as UTF-8. */
/**
 * A job's payload: bytes as they are, a string (stored as UTF-8 text), or any other JSON value (stored as
 * application/json and given back decoded as `data`).
 */
export type Payload = Buffer | Uint8Array | string | number | boolean | readonly unknown[] | { readonly [key: string]: unknown }

/** One job to push. */
export interface PushItem {
  /** Queue name (1-128 characters). */
  queue: string
  /** Job type the worker dispatches on (1-128 characters). */
  type: string
  /** Bytes handed to the worker as they are; a string is stored as UTF-8. */
  payload?: Payload | null
  /** MIME-like label of the payload. Default 'text/plain; charset=utf-8' for a string payload, else none. */
  payloadType?: string | null
  /** Any JSON value (routing data, ids). */
  target?: unknown
  /**
   * Unique per (tenant, queue) among live jobs. Pushing an existing key replaces the waiting job
   * (keeping its id, resetting its attempts); a running job is never replaced (see push()).
   */
  key?: string | null
  /** Higher runs first. Integer from -1,000,000 to 1,000,000. Default 0. */
  priority?: number
  /** Milliseconds to wait before the job is due. Not together with runAt. Default 0. */
  delay?: number
  /** When the job is due. Not together with delay. Default now. */
  runAt?: Date
  /** The job's own retry policy. Default: the queue's configured policy, else DEFAULT_RETRY_POLICY. */
  retryPolicy?: RetryPolicy
  /**
   * Tokens the job takes from its queue's rate limits when it is let through (a job calling an API
   * three times costs 3). Integer from 1 to 1,000,000. Default 1. No effect on a queue without limits.
   */
  cost?: number
}

/**
 * A push item whose payload TypeScript checks against PgQueue.JobTypes when its `type` is named there
 * (the payload is then required); any other type takes the untyped PushItem.
 */
export type PushItemOf<T extends string> = Omit<PushItem, 'type' | 'payload'> & { type: T } & (string extends T
  ? { payload?: Payload | null }
  : T extends RegisteredJobType
    ? { payload: JobPayload<T> }
    : { payload?: Payload | null })

/** A Kysely transaction, or a pg client (pool client or Client) inside BEGIN, owned by the caller. */
export type ExternalTransaction = Transaction<any> | Kysely<any> | pg.ClientBase

/** Options of push() and pushMany(). */
export interface PushOptions {
  /** Push inside the caller's transaction: the jobs exist only if it commits. */
  tx?: ExternalTransaction
}

/**
 * What happened to one pushed item:
 * - 'created': a new job;
 * - 'replaced': a waiting job with the same (queue, key) was replaced in place (same id, attempts reset);
 * - 'running': a job with that key is running; nothing was written for this item (pushMany only; push() throws);
 * - 'superseded': a later item of the same pushMany call had the same (queue, key) and won; nothing was written.
 */
export type PushOutcome = 'created' | 'replaced' | 'running' | 'superseded'

/** The result of pushing one item. */
export interface PushResult {
  /** The job's id. A replaced job keeps its id; a 'running' outcome gives the running job's id. */
  id: string
  queue: string
  key: string | null
  /** The job's state after the push: 'pending', 'scheduled', 'held' (queue paused or capped) or 'running'. */
  state: JobState
  runAt: Date
  createdAt: Date
  outcome: PushOutcome
}

/** A live job, as the user role sees it (no fair virtual time, no lease owner). */
export interface LiveJob {
  /** Always 'live': tells a live job from a HistoryEntry in what get() returns. */
  kind: 'live'
  id: string
  tenantId: string
  queue: string
  type: string
  key: string | null
  state: JobState
  priority: number
  runAt: Date
  payload: Buffer | null
  payloadType: string | null
  /** The payload decoded by its type: the JSON value for application/json, text for text/*, else the bytes. */
  data: unknown
  target: unknown
  /** Runs started so far. */
  attempt: number
  maxAttempts: number
  retryPolicy: RetryPolicy | null
  leaseExpiresAt: Date | null
  /** Set by cancel()/delete() on a running job; its worker aborts the handler at its next lease renewal. */
  cancelRequested: boolean
  lastError: unknown
  scheduleId: string | null
  /** The history entry this job retries, when pushed by retry(). */
  retryOf: string | null
  createdAt: Date
  updatedAt: Date
  startedAt: Date | null
  /** The flow this job belongs to (flow()), or null. */
  flowId: string | null
}

/** A finished job. */
export interface HistoryEntry {
  /** Always 'history': tells a finished job from a LiveJob in what get() returns. */
  kind: 'history'
  id: string
  tenantId: string
  queue: string
  type: string
  key: string | null
  state: HistoryState
  priority: number
  payload: Buffer | null
  payloadType: string | null
  /** The payload decoded by its type (see Job.data). */
  data: unknown
  target: unknown
  result: Buffer | null
  resultType: string | null
  /** The result decoded by its type: a handler's JSON result comes back as the value it returned. */
  resultData: unknown
  error: unknown
  attempt: number
  maxAttempts: number
  scheduleId: string | null
  retryOf: string | null
  workerId: string | null
  createdAt: Date
  runAt: Date
  startedAt: Date | null
  finishedAt: Date
  /** The flow this job belonged to (flow()), or null. */
  flowId: string | null
}

/** A job addressed by id, or by its user key. */
export type JobRef = string | { queue: string; key: string }

/** One page of a keyset-paged listing. */
export interface Page<T> {
  items: T[]
  /** Pass as `cursor` to get the next page; null when this is the last one. */
  nextCursor: string | null
}

/** Filters and paging of list(): live jobs, newest first (by id, which is time-ordered). */
export interface ListJobsOptions {
  queue?: string
  state?: JobState | JobState[]
  type?: string
  /** Only jobs created at or after this time. */
  since?: Date
  /** Only jobs created before this time. */
  until?: Date
  /** Page size, 1-1000. Default 100. */
  limit?: number
  cursor?: string | null
}

/** Filters and paging of history(): finished jobs, most recently finished first. */
export interface ListHistoryOptions {
  queue?: string
  state?: HistoryState | HistoryState[]
  type?: string
  /** Only jobs finished at or after this time. */
  since?: Date
  /** Only jobs finished before this time. */
  until?: Date
  /** Page size, 1-1000. Default 100. */
  limit?: number
  cursor?: string | null
}

/**
 * What delete() did: 'deleted' (a waiting job removed, no history kept), 'cancel_requested' (the job is
 * running: it was flagged and its worker aborts it), or 'not_found'.
 */
export type DeleteOutcome = 'deleted' | 'cancel_requested' | 'not_found'

/**
 * What cancel() did: 'cancelled' (a waiting job moved to history as cancelled), 'cancel_requested'
 * (running: flagged, its worker records it as cancelled), or 'not_found'.
 */
export type CancelOutcome = 'cancelled' | 'cancel_requested' | 'not_found'

/** Settings of one (tenant, queue). A field left out of configureQueue() keeps its value; null clears it. */
export interface QueueSettings {
  /** Paused queues keep their jobs 'held' until resumed. */
  paused?: boolean
  /** Default policy of jobs pushed without one. */
  retryPolicy?: RetryPolicy | null
  /** Most jobs of this tenant's queue running at once (1-1,000,000); null for no cap. */
  maxConcurrency?: number | null
  displayName?: string | null
  /**
   * Keep completed jobs in history (default true). false: a completed job is deleted with no history
   * row, as BullMQ's removeOnComplete or graphile-worker do; failed and cancelled jobs are always kept,
   * and Stats still count the completions (counts and latency histograms). Takes effect at the next
   * completion batch. A dropped job's `get(id)` returns null and `retry()` cannot find it.
   */
  keepCompleted?: boolean
}

/** A (tenant, queue) settings row. */
export interface QueueConfig {
  queue: string
  paused: boolean
  retryPolicy: RetryPolicy | null
  maxConcurrency: number | null
  displayName: string | null
  /** False when completed jobs are deleted without a history row (see QueueSettings.keepCompleted). */
  keepCompleted: boolean
  createdAt: Date
  updatedAt: Date
}

/** What to do with due times missed while nothing ran (the runner was down): run once, or skip to the next. */
export type MissedPolicy = 'fire_once' | 'skip'

/** A schedule to create or replace (by key). */
export interface ScheduleInput {
  /** Unique per tenant (1-512 characters). */
  key: string
  queue: string
  type: string
  /** { cron, timezone? (default 'UTC') } or { every: '15m' | milliseconds }. */
  schedule: ScheduleSpec
  payload?: Payload | null
  payloadType?: string | null
  target?: unknown
  priority?: number
  retryPolicy?: RetryPolicy | null
  /** Default 'fire_once'. */
  missedPolicy?: MissedPolicy
  /** Intervals: the grid's anchor and first due time. Cron: no due time before it. Default now. */
  startAt?: Date
  /** Create paused. Left out on an existing schedule: keeps its paused flag. */
  paused?: boolean
}

/** A stored schedule. */
export interface Schedule {
  id: string
  tenantId: string
  key: string
  queue: string
  type: string
  schedule: { cron: string; timezone: string } | { every: number }
  missedPolicy: MissedPolicy
  payload: Buffer | null
  payloadType: string | null
  target: unknown
  priority: number
  retryPolicy: RetryPolicy | null
  paused: boolean
  /** Intervals only: due times are anchorAt + k * every. */
  anchorAt: Date | null
  nextRunAt: Date | null
  lastRunAt: Date | null
  createdAt: Date
  updatedAt: Date
}

/** A run of a schedule: its live job, or its history entry once finished. */
export type ScheduleRun = ({ finished: false } & LiveJob) | ({ finished: true } & HistoryEntry)

/** Paging of lists without filters. */
export interface PageOptions {
  /** Page size, 1-1000. Default 100. */
  limit?: number
  cursor?: string | null
}

/** One worker-metadata entry. */
export interface MetadataEntry {
  key: string
  value: unknown
  updatedAt: Date
}

/**
 * One node of a flow: a push item (without a key) plus its name in the flow and the nodes it waits for.
 * A node runs when every node it depends on has completed. When one of them fails for good or is
 * cancelled, the node is cancelled (with its own waiting descendants), unless `runOnParentFailure`.
 * `delay`/`runAt` give the earliest start: a node released earlier waits until then.
 */
export type FlowNode<T extends string = string> = Omit<PushItemOf<T>, 'key'> & {
  /** The node's name in this flow call, 1-128 bytes, unique in the call. */
  ref: string
  /** Refs of nodes of the same call this node waits for (any number, any queue of the tenant). */
  dependsOn?: readonly string[]
  /** Run even when a parent failed or was cancelled; ctx.parents() shows their outcomes. Default false. */
  runOnParentFailure?: boolean
  key?: never
}

/** What flow() created. */
export interface FlowCreated {
  /** The flow's id: flows.get(flowId), flows.cancel(flowId). */
  flowId: string
  /** The job id of each node, by ref. */
  jobs: Record<string, string>
}

/** The state of a flow node: a live job's state ('waiting' until its parents are done), or its outcome. */
export type FlowNodeState = JobState | HistoryState

/** One node of flows.get(). */
export interface FlowNodeInfo {
  id: string
  ref: string
  queue: string
  type: string
  state: FlowNodeState
  /** Ids of the nodes it waits for. */
  parents: string[]
  runOnParentFailure: boolean
  /** Parents not finished yet (while waiting). */
  parentsLeft: number
  /** The error record of a failed or cancelled node (code PARENT_FAILED when a parent's failure cancelled it). */
  error: unknown
  createdAt: Date
  finishedAt: Date | null
}

/** A flow as flows.get() returns it: its nodes (oldest first) and edges. */
export interface FlowInfo {
  flowId: string
  nodes: FlowNodeInfo[]
  edges: { parent: string; child: string }[]
  /** Nodes per state. */
  counts: Partial<Record<FlowNodeState, number>>
  /** True when every node has finished. */
  finished: boolean
}
