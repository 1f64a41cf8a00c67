import type { Span } from '@opentelemetry/api'
import type { AbortReason, Job, JobAbortedError } from './job.js'
import type { ClaimedRow } from './queries/jobs.js'

export type Phase = 'buffered' | 'running' | 'finishing' | 'done' | 'lost'

/** One claimed run of a job, from claim until its outcome is recorded. */
export interface Run {
  job: Job
  row: ClaimedRow
  /** The lease owner the claim wrote (node id plus claim token): the run's identity in every write. */
  owner: string
  /** rowKey(tenant, id): ids are unique per tenant only. */
  key: string
  phase: Phase
  /** Made on the handler's first read of ctx.signal: most handlers never read it, and an
   *  AbortController per job was a measurable share of the worker's CPU. */
  controller?: AbortController
  abortReason?: AbortReason
  /** Set once the run is aborted; later aborts are ignored. */
  abortError?: JobAbortedError
  /** Rejects the handler's race while the handler runs. */
  interrupt?: (err: JobAbortedError) => void
  startedAt: number
  /** When the claim returned it (performance.now(), a monotonic clock), to notice jobs waiting long in the buffer. */
  claimedAt: number
  /** Until when the lease is surely held, on the monotonic clock (performance.now()): the send time of
   *  the claim or of the last renewal that reached the row, plus the lease length. The database's
   *  expiry is later than this, never earlier. */
  leaseUntil: number
  /** Payload bytes, counted against the buffer's byte budget while the run waits there. */
  bytes: number
  /** The handlerTimeoutMs timer while the handler runs. */
  timer?: NodeJS.Timeout
  /** The run's process span, when telemetry records traces. */
  span?: Span
}
