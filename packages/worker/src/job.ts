import { PgQueueValidationError, type JobPayload, type JobResult, type RegisteredJobType } from '@pgqueue/core/internal'

/** A job as the handler sees it. `target` is the JSON the producer stored, parsed. */
export interface Job<Target = unknown, Data = unknown> {
  id: string
  tenantId: string
  queue: string
  type: string
  /** The producer's key, unique per (tenant, queue) among live jobs, or null. */
  key: string | null
  payload: Buffer | null
  payloadType: string | null
  /** The payload decoded by its type: the JSON value the producer pushed (application/json), text for text/*, else the bytes. */
  data: Data
  target: Target
  /** This run's number, starting at 1. */
  attempt: number
  /** Runs allowed in total, the first included. */
  maxAttempts: number
  runAt: Date
  createdAt: Date
  scheduleId: string | null
  priority: number
  /** The flow this job belongs to, or null (see ctx.parents() and ctx.flow). */
  flowId: string | null
}

/** A parent of a flow job, as ctx.parents() returns it. */
export interface FlowParent {
  id: string
  /** The parent's ref in its flow. */
  ref: string
  queue: string
  type: string
  /** 'completed', or 'failed' / 'cancelled' for a child that runs on parent failure. */
  state: 'waiting' | 'live' | 'completed' | 'failed' | 'cancelled'
  result: Buffer | null
  resultType: string | null
  /** The result decoded by its type: the JSON value the parent's handler returned. */
  data: unknown
  error: unknown
  finishedAt: Date | null
}

/** A node added at run time by ctx.flow.add(): a push item (no key) with ref, dependsOn and runOnParentFailure. */
export interface FlowAddNode {
  ref: string
  queue: string
  type: string
  payload?: unknown
  payloadType?: string | null
  target?: unknown
  priority?: number
  delay?: number
  runAt?: Date
  retryPolicy?: unknown
  /** Refs of nodes of this call, or ids of jobs already in the flow (the running job's own id included). */
  dependsOn?: readonly string[]
  runOnParentFailure?: boolean
}

/** The running job's flow, as the handler sees it. */
export interface FlowHandle {
  /**
   * Adds nodes to this job's flow in one statement (a job in no flow becomes the root of a new one,
   * ref 'root'). A node may wait for nodes of the same call and for jobs already in the flow, this
   * job included (its children then start when it completes); so a splitter adds N chunks and a
   * merge that depends on all of them, N known only now. At most 1,000 nodes per call.
   */
  add(nodes: readonly FlowAddNode[]): Promise<{ flowId: string; jobs: Record<string, string> }>
}

/** What a handler gets besides the job. */
export interface JobContext {
  /**
   * Fires when the worker stops (after its timeout), when the job is cancelled, when the job's
   * lease was lost (another worker may run it now) or when `handlerTimeoutMs` passes. The reason
   * is a JobAbortedError naming which.
   */
  signal: AbortSignal
  /**
   * Makes the lease last at least `ms` from now (the automatic heartbeat renews it anyway while the
   * worker is alive; use this before a long step that may block the event loop). Rejects with a
   * JobAbortedError when the lease was already lost.
   */
  extendLease(ms: number): Promise<void>
  /**
   * Ends the run and makes this job's tenant wait `ms` in this queue, on every Worker (say, after an
   * HTTP 429 from an API the tenant's jobs call): the job and the tenant's other waiting jobs of the
   * queue are held until then, and the job's attempt is not counted. Throws a JobBackOffError, so
   * code after it does not run; `ms` must be an integer from 1 to BACK_OFF_MAX_MS (else a
   * PgQueueValidationError is thrown instead, which fails the run like any error).
   */
  backOff(ms: number): never
  /** The worker's node id. */
  nodeId: string
  /**
   * The parents of this flow job with their outcomes and results, in one query (empty outside a
   * flow). Read from the flow's own records, so they stay readable whatever the queue keeps in history.
   */
  parents(): Promise<FlowParent[]>
  /** This job's flow: add nodes to it at run time. */
  readonly flow: FlowHandle
}

/**
 * What a handler may return. Nothing (undefined/null) records no result; `{ result, resultType }`
 * records bytes (a Buffer or Uint8Array, type 'application/octet-stream' unless given) or any JSON
 * value (serialised, type 'application/json' unless given). Any other value is recorded as JSON.
 */
export type HandlerResult = void | null | undefined | { result?: unknown; resultType?: string } | unknown

/** The function that runs a job. Throwing (or rejecting) fails the run; it is retried while attempts remain. */
export type JobHandler<Target = unknown> = (job: Job<Target>, ctx: JobContext) => Promise<HandlerResult> | HandlerResult

/**
 * One handler per job type. A Worker given this claims only these types (in the queues it serves), so a
 * job of a type it cannot run is never taken from the workers that can.
 */
export type JobHandlers<Target = unknown> = {
  readonly [T in RegisteredJobType]?: (job: Job<Target, JobPayload<T>>, ctx: JobContext) => Promise<JobResult<T>> | JobResult<T>
} & {
  // A method signature on purpose: its parameters are compared both ways, so the typed handlers above
  // also satisfy this index signature while unregistered types still see `data: unknown`.
  readonly [type: string]: { handle(job: Job<Target>, ctx: JobContext): Promise<HandlerResult> | HandlerResult }['handle'] | undefined
}

/** Why a job's signal fired. */
export type AbortReason = 'shutdown' | 'cancelled' | 'lease-lost' | 'timeout'

/** The reason carried by `ctx.signal` when it fires. */
export class JobAbortedError extends Error {
  readonly reason: AbortReason
  /** The reason as an error code ('CANCELLED', 'TIMEOUT', 'SHUTDOWN', 'LEASE_LOST'), kept in the stored error record. */
  readonly code: string
  constructor(reason: AbortReason, message?: string) {
    super(message ?? `job aborted: ${reason}`)
    this.name = 'JobAbortedError'
    this.reason = reason
    this.code = reason.toUpperCase().replace('-', '_')
  }
}

/** Longest back-off a handler may ask for: one day. */
export const BACK_OFF_MAX_MS = 86_400_000

/**
 * Thrown by a handler (or by `ctx.backOff(ms)`) to back off: the tenant's queue waits `retryAfterMs`
 * on every Worker and the job goes back without spending an attempt. Its constructor validates.
 */
export class JobBackOffError extends Error {
  readonly retryAfterMs: number
  constructor(retryAfterMs: number, message?: string) {
    if (typeof retryAfterMs !== 'number' || !Number.isInteger(retryAfterMs) || retryAfterMs < 1 || retryAfterMs > BACK_OFF_MAX_MS) {
      throw new PgQueueValidationError('retryAfterMs', `must be an integer from 1 to ${BACK_OFF_MAX_MS}`, retryAfterMs)
    }
    super(message ?? `backing off for ${retryAfterMs} ms`)
    this.name = 'JobBackOffError'
    this.retryAfterMs = retryAfterMs
  }
}
