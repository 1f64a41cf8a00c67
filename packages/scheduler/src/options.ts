import { hostname } from 'node:os'
import { randomBytes } from 'node:crypto'
import { DEFAULT_SCHEMA, PgQueueValidationError, warningsLogger, validateIdentifier, validateOptionalInt, validateName, type Logger } from '@pgqueue/core/internal'

/** Options of Scheduler.create(). All optional; defaults are in resolveSchedulerOptions(). */
export interface SchedulerOptions {
  /** This instance's row in `nodes`. Default `scheduler-<host>-<pid>-<random>`. */
  nodeId?: string
  /** Pause between rounds when a round found nothing to do, in ms (a due job or a notification wakes
   *  the Scheduler sooner). Default 1,000. */
  pollMs?: number
  /** Pause between rounds while jobs are held by a concurrency cap, or due jobs were left behind
   *  because another transaction held their fair clock, in ms: how soon room freed by a finishing job
   *  is used, and a clock freed by a commit. Default 200. */
  heldPollMs?: number
  /** Due jobs promoted per transaction, shared equally among the tenants with due jobs. Default 1,000. */
  promoteBatchSize?: number
  /** Tenants with scheduled jobs visited per promotion transaction (one index probe each, from a
   *  rotating cursor; a pass takes up to 8 transactions). Default 1,000. */
  promoteTenantsPerBatch?: number
  /** (tenant, queue) pairs holding jobs visited per round, shared equally among the tenants holding
   *  jobs (at least one each, up to this many tenants). Default 100. */
  releasePairsPerRound?: number
  /** Held jobs released per pair per round. Default 100. */
  releaseBatchSize?: number
  /** Expired leases rescued per statement. Default 1,000. */
  rescueBatchSize?: number
  /** Least time between lease rescues of a running Scheduler, in ms (a rescue reads every running
   *  job; rounds come as often as pushes notify). A rescue that hit its batch limit goes on at once.
   *  runOnce() always rescues. Default 1,000. */
  rescueIntervalMs?: number
  /** How often the `nodes` row is refreshed, in ms. Default 10,000. */
  heartbeatMs?: number
  /** Connection string for the LISTEN connection. Default: the URL given to create(), or the pool's
   *  settings. Behind PgBouncer in transaction mode, give a direct URL here or set `listen: false`. */
  listenUrl?: string
  /** Use LISTEN/NOTIFY to wake on pushes into paused or capped queues. Default true. */
  listen?: boolean
  /** Least time from the start of one round to a round that a notification starts, in ms: pushes
   *  notify on every commit, and only those into paused or capped queues leave this Scheduler work.
   *  Default 100. */
  notifyGapMs?: number
  /** Longest wait for a lock in any of the Scheduler's transactions, in ms: a backstop, since no step
   *  waits on a lock a tenant can hold (rows and fair clocks are taken with SKIP LOCKED). A step that
   *  times out fails its round, which is retried with backoff. Default 2,000. */
  lockTimeoutMs?: number
  /** Longest run of any of the Scheduler's statements, in ms. Default 30,000. */
  statementTimeoutMs?: number
  /** Connections in the pool when a URL is given. Default 2. */
  poolSize?: number
  /** The pgqueue schema. Default 'pgqueue'. */
  schema?: string
  /** Receives warnings and errors. Default: warnings and errors to the console (`warningsLogger`); pass `silentLogger` to rely on events alone. */
  logger?: Logger
}

/** SchedulerOptions with every default filled in. */
export interface ResolvedSchedulerOptions {
  nodeId: string
  pollMs: number
  heldPollMs: number
  promoteBatchSize: number
  promoteTenantsPerBatch: number
  releasePairsPerRound: number
  releaseBatchSize: number
  rescueBatchSize: number
  rescueIntervalMs: number
  heartbeatMs: number
  listenUrl: string | undefined
  listen: boolean
  notifyGapMs: number
  lockTimeoutMs: number
  statementTimeoutMs: number
  poolSize: number
  schema: string
  logger: Logger
}


/** Fills defaults and validates; throws PgQueueValidationError naming the field. */
export function resolveSchedulerOptions(options: SchedulerOptions = {}): ResolvedSchedulerOptions {
  if (typeof options !== 'object' || options === null) throw new PgQueueValidationError('options', 'must be an object', options)
  if (options.listenUrl !== undefined && (typeof options.listenUrl !== 'string' || options.listenUrl === '')) {
    throw new PgQueueValidationError('listenUrl', 'must be a connection string', options.listenUrl)
  }
  if (options.listen !== undefined && typeof options.listen !== 'boolean') throw new PgQueueValidationError('listen', 'must be a boolean', options.listen)
  return {
    nodeId: options.nodeId === undefined ? `scheduler-${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}` : validateName('nodeId', options.nodeId, 200),
    pollMs: validateOptionalInt('pollMs', options.pollMs, 1_000, 10, 3600_000),
    heldPollMs: validateOptionalInt('heldPollMs', options.heldPollMs, 200, 10, 3600_000),
    promoteBatchSize: validateOptionalInt('promoteBatchSize', options.promoteBatchSize, 1_000, 1, 100_000),
    promoteTenantsPerBatch: validateOptionalInt('promoteTenantsPerBatch', options.promoteTenantsPerBatch, 1_000, 1, 100_000),
    releasePairsPerRound: validateOptionalInt('releasePairsPerRound', options.releasePairsPerRound, 100, 1, 100_000),
    releaseBatchSize: validateOptionalInt('releaseBatchSize', options.releaseBatchSize, 100, 1, 100_000),
    rescueBatchSize: validateOptionalInt('rescueBatchSize', options.rescueBatchSize, 1_000, 1, 100_000),
    rescueIntervalMs: validateOptionalInt('rescueIntervalMs', options.rescueIntervalMs, 1_000, 0, 3600_000),
    heartbeatMs: validateOptionalInt('heartbeatMs', options.heartbeatMs, 10_000, 100, 3600_000),
    listenUrl: options.listenUrl,
    listen: options.listen ?? true,
    notifyGapMs: validateOptionalInt('notifyGapMs', options.notifyGapMs, 100, 0, 60_000),
    lockTimeoutMs: validateOptionalInt('lockTimeoutMs', options.lockTimeoutMs, 2_000, 1, 600_000),
    statementTimeoutMs: validateOptionalInt('statementTimeoutMs', options.statementTimeoutMs, 30_000, 1, 3600_000),
    poolSize: validateOptionalInt('poolSize', options.poolSize, 2, 1, 100),
    schema: validateIdentifier(options.schema ?? DEFAULT_SCHEMA, 'schema'),
    logger: options.logger ?? warningsLogger,
  }
}
