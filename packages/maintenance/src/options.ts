import { PgQueueValidationError, resolveSchemaOptions, systemClock, type Clock, type Logger, type PartitionGranularity, type ResolvedSchemaOptions, type SchemaOptions } from '@pgqueue/core/internal'

/** The tasks Maintenance runs; each can be switched off with `tasks: { name: false }`. */
export type MaintenanceTaskName = 'partitions' | 'retention' | 'nodes' | 'leases' | 'vacuum' | 'rollup' | 'liveCounts'

/** Options of Maintenance. Every field is optional; defaults are in MAINTENANCE_DEFAULTS. */
export interface MaintenanceOptions extends SchemaOptions {
  /** Size of each history partition: 'day', 'week' or 'month'. Default 'day'. */
  partitionGranularity?: PartitionGranularity
  /** How many periods ahead of the current one to keep created. Default 7 (with 'day': a week). */
  partitionsAhead?: number
  /** History older than this is removed, by dropping whole partitions. Default 30 days. */
  retentionMs?: number
  /** 'drop' removes expired partitions; 'detach' detaches them and leaves the tables for you to archive. Default 'drop'. */
  retentionMode?: 'drop' | 'detach'
  /**
   * Rows older than the retention that sit in the default partition (they have no partition to drop)
   * are deleted in batches of this size, at most `defaultPurgeMaxBatches` batches per run. Default 1,000.
   */
  defaultPurgeBatchSize?: number
  /** Upper bound of default-partition delete batches per run. Default 20. */
  defaultPurgeMaxBatches?: number
  /**
   * How long DDL (attach, drop, detach) may wait for a table lock before giving up until the next run.
   * Keep it short: while a DROP waits for the parent's exclusive lock, every later reader and writer of
   * job_history queues behind it. Default 1 s.
   */
  ddlLockTimeoutMs?: number
  /** Node records whose heartbeat is older than this are deleted. Default 5 minutes (components beat every few seconds). */
  staleNodeAfterMs?: number
  /**
   * A running job whose lease expired more than this long ago is rescued by Maintenance (the
   * Scheduler normally does it within seconds; this is the safety net). Default 5 minutes.
   */
  orphanedLeaseGraceMs?: number
  /** Orphaned leases handled per statement (the task repeats while batches come back full, up to 20). Default 500. */
  orphanedLeaseBatchSize?: number
  /** VACUUM (ANALYZE) the live jobs table when its dead tuples reach this count. Default 10,000. */
  vacuumDeadTuples?: number
  /** ...and are at least this fraction of live + dead tuples (0 to 1). Default 0.05. */
  vacuumDeadRatio?: number
  /** How often the loop checks the partitions and retention. Default 1 hour. */
  partitionsEveryMs?: number
  /** How often the loop deletes stale nodes and rescues orphaned leases. Default 1 minute. */
  housekeepingEveryMs?: number
  /** How often the loop reads the live table's health and vacuums it when needed. Default 10 s. */
  vacuumEveryMs?: number
  /** How often the loop rolls finished jobs up for global Stats. Default 1 minute. */
  rollupEveryMs?: number
  /**
   * The rollup leaves the last this-many ms of history alone: a completion transaction that started
   * earlier (finished_at is its start time) may still commit. Default 2 minutes.
   */
  rollupSafetyLagMs?: number
  /** History rolled up per transaction, in ms (at least 1 hour; cut on hour boundaries). Default 6 hours. */
  rollupChunkMs?: number
  /** Chunks per run, so a first run over a long history is spread over several runs. Default 20. */
  rollupMaxChunksPerRun?: number
  /** Minute rollups are kept this long (hours are kept for retentionMs). Default 48 hours. */
  rollupMinutesRetentionMs?: number
  /** How often the loop refreshes the live_counts snapshot for global Stats. Default 10 s. */
  liveCountsEveryMs?: number
  /** Tasks to switch off, e.g. `{ vacuum: false }`. Default: all on. */
  tasks?: Partial<Record<MaintenanceTaskName, boolean>>
  /** Pool size when a URL is given. Default 2. */
  poolSize?: number
  /** Receives warnings and errors. Default: warnings and errors to the console (`warningsLogger`); pass `silentLogger` to rely on events alone. */
  logger?: Logger
  /** Time as Maintenance sees it (partition calendar, retention cutoff, task intervals). Default: the system clock. */
  clock?: Clock
}

/** The defaults of MaintenanceOptions, in one place. */
export const MAINTENANCE_DEFAULTS = Object.freeze({
  partitionGranularity: 'day' as PartitionGranularity,
  partitionsAhead: 7,
  retentionMs: 30 * 24 * 3_600_000,
  retentionMode: 'drop' as 'drop' | 'detach',
  defaultPurgeBatchSize: 1_000,
  defaultPurgeMaxBatches: 20,
  ddlLockTimeoutMs: 1_000,
  staleNodeAfterMs: 300_000,
  orphanedLeaseGraceMs: 5 * 60_000,
  orphanedLeaseBatchSize: 500,
  vacuumDeadTuples: 10_000,
  vacuumDeadRatio: 0.05,
  partitionsEveryMs: 3_600_000,
  housekeepingEveryMs: 60_000,
  vacuumEveryMs: 10_000,
  rollupEveryMs: 60_000,
  rollupSafetyLagMs: 2 * 60_000,
  rollupChunkMs: 6 * 3_600_000,
  rollupMaxChunksPerRun: 20,
  rollupMinutesRetentionMs: 48 * 3_600_000,
  liveCountsEveryMs: 10_000,
  poolSize: 2,
})

/** MaintenanceOptions with defaults filled in and checked. */
export interface ResolvedMaintenanceOptions extends ResolvedSchemaOptions {
  partitionGranularity: PartitionGranularity
  partitionsAhead: number
  retentionMs: number
  retentionMode: 'drop' | 'detach'
  defaultPurgeBatchSize: number
  defaultPurgeMaxBatches: number
  ddlLockTimeoutMs: number
  staleNodeAfterMs: number
  orphanedLeaseGraceMs: number
  orphanedLeaseBatchSize: number
  vacuumDeadTuples: number
  vacuumDeadRatio: number
  partitionsEveryMs: number
  housekeepingEveryMs: number
  vacuumEveryMs: number
  rollupEveryMs: number
  rollupSafetyLagMs: number
  rollupChunkMs: number
  rollupMaxChunksPerRun: number
  rollupMinutesRetentionMs: number
  liveCountsEveryMs: number
  tasks: Record<MaintenanceTaskName, boolean>
  poolSize: number
  clock: Clock
}

function int(field: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new PgQueueValidationError(field, `must be an integer from ${min} to ${max}`, value)
  }
  return value
}

/** Fills defaults and rejects invalid options, naming the field. */
export function resolveMaintenanceOptions(options: MaintenanceOptions = {}): ResolvedMaintenanceOptions {
  const d = MAINTENANCE_DEFAULTS
  const o = { ...d, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) } as typeof d & MaintenanceOptions
  if (!['day', 'week', 'month'].includes(o.partitionGranularity)) {
    throw new PgQueueValidationError('partitionGranularity', "must be 'day', 'week' or 'month'", o.partitionGranularity)
  }
  if (o.retentionMode !== 'drop' && o.retentionMode !== 'detach') {
    throw new PgQueueValidationError('retentionMode', "must be 'drop' or 'detach'", o.retentionMode)
  }
  if (typeof o.vacuumDeadRatio !== 'number' || !(o.vacuumDeadRatio >= 0 && o.vacuumDeadRatio <= 1)) {
    throw new PgQueueValidationError('vacuumDeadRatio', 'must be a number from 0 to 1', o.vacuumDeadRatio)
  }
  const tasks: Record<MaintenanceTaskName, boolean> = { partitions: true, retention: true, nodes: true, leases: true, vacuum: true, rollup: true, liveCounts: true }
  for (const [name, on] of Object.entries(options.tasks ?? {})) {
    if (!(name in tasks)) throw new PgQueueValidationError(`tasks.${name}`, 'is not a maintenance task', on)
    if (typeof on !== 'boolean') throw new PgQueueValidationError(`tasks.${name}`, 'must be a boolean', on)
    tasks[name as MaintenanceTaskName] = on
  }
  const clock = options.clock ?? systemClock
  if (typeof clock.now !== 'function') throw new PgQueueValidationError('clock', 'must have a now() method', clock)
  return {
    ...resolveSchemaOptions(options),
    partitionGranularity: o.partitionGranularity,
    partitionsAhead: int('partitionsAhead', o.partitionsAhead, 0, 366),
    retentionMs: int('retentionMs', o.retentionMs, 60_000),
    retentionMode: o.retentionMode,
    defaultPurgeBatchSize: int('defaultPurgeBatchSize', o.defaultPurgeBatchSize, 1, 100_000),
    defaultPurgeMaxBatches: int('defaultPurgeMaxBatches', o.defaultPurgeMaxBatches, 1, 10_000),
    ddlLockTimeoutMs: int('ddlLockTimeoutMs', o.ddlLockTimeoutMs, 1, 600_000),
    staleNodeAfterMs: int('staleNodeAfterMs', o.staleNodeAfterMs, 1_000),
    orphanedLeaseGraceMs: int('orphanedLeaseGraceMs', o.orphanedLeaseGraceMs, 0),
    orphanedLeaseBatchSize: int('orphanedLeaseBatchSize', o.orphanedLeaseBatchSize, 1, 100_000),
    vacuumDeadTuples: int('vacuumDeadTuples', o.vacuumDeadTuples, 0),
    vacuumDeadRatio: o.vacuumDeadRatio,
    partitionsEveryMs: int('partitionsEveryMs', o.partitionsEveryMs, 1_000),
    housekeepingEveryMs: int('housekeepingEveryMs', o.housekeepingEveryMs, 100),
    vacuumEveryMs: int('vacuumEveryMs', o.vacuumEveryMs, 100),
    rollupEveryMs: int('rollupEveryMs', o.rollupEveryMs, 100),
    rollupSafetyLagMs: int('rollupSafetyLagMs', o.rollupSafetyLagMs, 0),
    rollupChunkMs: int('rollupChunkMs', o.rollupChunkMs, 3_600_000),
    rollupMaxChunksPerRun: int('rollupMaxChunksPerRun', o.rollupMaxChunksPerRun, 1, 100_000),
    rollupMinutesRetentionMs: int('rollupMinutesRetentionMs', o.rollupMinutesRetentionMs, 3_600_000),
    liveCountsEveryMs: int('liveCountsEveryMs', o.liveCountsEveryMs, 100),
    tasks,
    poolSize: int('poolSize', o.poolSize, 1, 100),
    clock,
  }
}
