import { hostname } from 'node:os'
import { randomBytes } from 'node:crypto'
import {
  DEFAULT_SCHEMA,
  LIMITS,
  PgQueueValidationError,
  warningsLogger,
  validateIdentifier,
  validateInt,
  validateName,
  validateOptionalInt,
  validateTelemetryOptions,
  type Logger,
  type TelemetryOptions,
} from '@pgqueue/core/internal'

/** Options of Worker.create(). Every field is optional except where noted; defaults are in resolveWorkerOptions(). */
export interface WorkerOptions {
  /** This worker's id: the lease owner of the jobs it runs and its row in `nodes`. Must be unique among
   *  live workers. Default `worker-<host>-<pid>-<random>`. */
  nodeId?: string
  /** Queues to serve, visited round-robin. Default: every queue, claimed by tenant (each tenant with
   *  pending jobs gets one share of the Worker however many queues it spreads them over). */
  queues?: string[]
  /** Only jobs of these types are claimed. A filter inside the claim: putting types into their own
   *  queues is the fast path. Default: all types. */
  types?: string[]
  /** Handlers running at once. Default 10. */
  concurrency?: number
  /** Largest claim, and the largest local buffer of claimed jobs not yet started. The claim size adapts
   *  between max(concurrency, 10) and this: it doubles while handlers sit idle waiting for a claim and
   *  halves while claimed jobs wait in the buffer (so slow jobs are not hoarded under lease while other
   *  workers could run them). The next claim goes out when the buffer falls to half. Default 1000. */
  batchSize?: number
  /** Lease length in ms: a job whose worker stops renewing it (crash) is rescued this long after the
   *  last renewal. Default 30,000. */
  leaseMs?: number
  /** How often the leases of all this worker's jobs are renewed (one statement). Default leaseMs / 3. */
  heartbeatMs?: number
  /** Pause between claims when nothing was pending (notifications usually wake the worker first). Default 1,000. */
  pollMs?: number
  /** While idle, claims woken by notifications are spaced at least this far apart after a short burst,
   *  so a flood of notifications (any login may send them) costs a bounded number of claims. A claim
   *  that finds work does not count, nor the empty one that usually follows it. Default 50. */
  wakeGapMs?: number
  /** No longer used: a Worker serving every queue finds tenants with pending jobs in every claim
   *  (jobClaimAcrossQueues). Still accepted and validated, so existing options keep working. */
  queueRefreshMs?: number
  /** Largest claim in bytes (payloads plus targets, as stored): a claim stops adding jobs once the jobs
   *  before reach this, and takes one job at least. Also bounds the bytes of payloads waiting in the
   *  local buffer. Default 32 MiB. */
  claimMaxBytes?: number
  /** Finished jobs recorded per statement. Default 500. */
  completeBatchSize?: number
  /** Largest completion statement in bytes of results and errors (a batch is cut short to stay below,
   *  one outcome at least). Default 32 MiB. */
  completeMaxBytes?: number
  /** How long a finished job may wait for others to share its completion statement, in ms. 0 flushes on
   *  the next tick. Default 1. */
  completeDelayMs?: number
  /** Aborts (and fails) a run that takes longer than this, in ms. Default: no limit. */
  handlerTimeoutMs?: number
  /** How long stop() waits for running handlers before aborting them, in ms. Default 30,000. stop()
   *  then allows a grace of at most 5 s to record outcomes, however the database answers. */
  stopTimeoutMs?: number
  /** Client-side deadline for each of the Worker's statements, in ms: past it the connection is cut
   *  and the statement fails, so a silent network partition surfaces as an 'error' instead of a hang.
   *  Default the larger of leaseMs and 30,000 (a run's lease is lost by then anyway). */
  queryTimeoutMs?: number
  /** Largest result accepted, in bytes; a bigger one fails the run. Default 1 MiB. */
  maxResultBytes?: number
  /** Connection string for the LISTEN connection. Default: the URL given to create(), or the pool's
   *  connection settings. Set `listen: false` to poll only (e.g. behind PgBouncer without a direct URL). */
  listenUrl?: string
  /** Use LISTEN/NOTIFY for wake-ups. Default true. */
  listen?: boolean
  /** Connections in the pool when a URL is given. Default 4. */
  poolSize?: number
  /**
   * Warn (logger.warn) when no Scheduler has beaten for this long while the Worker runs: without one,
   * delayed jobs, retries, held jobs and expired leases wait. Checked with the node heartbeat; at most one
   * warning per 10 minutes. Default 60,000.
   */
  noSchedulerWarnMs?: number
  /** The pgqueue schema. Default 'pgqueue'. */
  schema?: string
  /** Receives warnings and errors. Default: warnings and errors to the console (`warningsLogger`); pass `silentLogger` to rely on events alone. */
  logger?: Logger
  /**
   * OpenTelemetry: a `process` span per run (a child of the push's span when the job carries its trace
   * context), `settle` spans for recording outcomes, and the consumed-messages, process-duration and
   * operation-duration metrics. Looked up once at start(): register the SDK before. Records nothing
   * when no SDK is registered.
   */
  telemetry?: TelemetryOptions
}

/** WorkerOptions with every default filled in. */
export interface ResolvedWorkerOptions {
  nodeId: string
  queues: string[] | undefined
  types: string[] | undefined
  concurrency: number
  batchSize: number
  leaseMs: number
  noSchedulerWarnMs: number
  heartbeatMs: number
  pollMs: number
  wakeGapMs: number
  queueRefreshMs: number
  claimMaxBytes: number
  completeBatchSize: number
  completeMaxBytes: number
  completeDelayMs: number
  handlerTimeoutMs: number | undefined
  stopTimeoutMs: number
  queryTimeoutMs: number
  maxResultBytes: number
  listenUrl: string | undefined
  listen: boolean
  poolSize: number
  schema: string
  logger: Logger
  telemetry: TelemetryOptions
}


function nameList(field: string, value: unknown, max: number): string[] | undefined {
  if (value === undefined) return undefined
  if (!Array.isArray(value) || value.length === 0) throw new PgQueueValidationError(field, 'must be a non-empty array of names', value)
  return [...new Set(value.map((v, i) => validateName(`${field}[${i}]`, v, max)))]
}

/** Fills defaults and validates; throws PgQueueValidationError naming the field. */
export function resolveWorkerOptions(options: WorkerOptions = {}): ResolvedWorkerOptions {
  if (typeof options !== 'object' || options === null) throw new PgQueueValidationError('options', 'must be an object', options)
  const nodeId = options.nodeId === undefined ? `worker-${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}` : validateName('nodeId', options.nodeId, 200)
  const concurrency = validateOptionalInt('concurrency', options.concurrency, 10, 1, 10_000)
  const batchSize = validateOptionalInt('batchSize', options.batchSize, 1000, 1, 10_000)
  const leaseMs = validateOptionalInt('leaseMs', options.leaseMs, 30_000, 500, 24 * 3600_000)
  const heartbeatMs = validateOptionalInt('heartbeatMs', options.heartbeatMs, Math.max(100, Math.floor(leaseMs / 3)), 50, leaseMs)
  if (heartbeatMs >= leaseMs) throw new PgQueueValidationError('heartbeatMs', 'must be below leaseMs', heartbeatMs)
  if (options.listenUrl !== undefined && (typeof options.listenUrl !== 'string' || options.listenUrl === '')) {
    throw new PgQueueValidationError('listenUrl', 'must be a connection string', options.listenUrl)
  }
  if (options.listen !== undefined && typeof options.listen !== 'boolean') throw new PgQueueValidationError('listen', 'must be a boolean', options.listen)
  return {
    nodeId,
    queues: nameList('queues', options.queues, LIMITS.queueName),
    types: nameList('types', options.types, LIMITS.type),
    concurrency,
    batchSize,
    leaseMs,
    heartbeatMs,
    pollMs: validateOptionalInt('pollMs', options.pollMs, 1_000, 10, 3600_000),
    wakeGapMs: validateOptionalInt('wakeGapMs', options.wakeGapMs, 50, 0, 60_000),
    queueRefreshMs: validateOptionalInt('queueRefreshMs', options.queueRefreshMs, 2_000, 10, 3600_000),
    claimMaxBytes: validateOptionalInt('claimMaxBytes', options.claimMaxBytes, 32 * 1024 * 1024, 1, 1024 * 1024 * 1024),
    completeBatchSize: validateOptionalInt('completeBatchSize', options.completeBatchSize, 500, 1, 10_000),
    completeMaxBytes: validateOptionalInt('completeMaxBytes', options.completeMaxBytes, 32 * 1024 * 1024, 1, 256 * 1024 * 1024),
    completeDelayMs: validateOptionalInt('completeDelayMs', options.completeDelayMs, 1, 0, 10_000),
    handlerTimeoutMs: options.handlerTimeoutMs === undefined ? undefined : validateInt('handlerTimeoutMs', options.handlerTimeoutMs, 1, 2 ** 31 - 1),
    stopTimeoutMs: validateOptionalInt('stopTimeoutMs', options.stopTimeoutMs, 30_000, 0, 2 ** 31 - 1),
    queryTimeoutMs: validateOptionalInt('queryTimeoutMs', options.queryTimeoutMs, Math.max(leaseMs, 30_000), 100, 2 ** 31 - 1),
    maxResultBytes: validateOptionalInt('maxResultBytes', options.maxResultBytes, 1024 * 1024, 0, LIMITS.payloadBytes * 4),
    listenUrl: options.listenUrl,
    listen: options.listen ?? true,
    poolSize: validateOptionalInt('poolSize', options.poolSize, 4, 2, 100),
    noSchedulerWarnMs: validateOptionalInt('noSchedulerWarnMs', options.noSchedulerWarnMs, 60_000, 1, 2 ** 31 - 1),
    schema: validateIdentifier(options.schema ?? DEFAULT_SCHEMA, 'schema'),
    logger: options.logger ?? warningsLogger,
    telemetry: validateTelemetryOptions(options.telemetry),
  }
}
