import { tableStatsRead, tableVacuum, type TableStatsRow } from '../queries/tables.js'
import type { TaskContext } from './context.js'

/** Bloat and autovacuum lag of the live jobs table. */
export interface TableHealth {
  table: string
  liveTuples: number
  deadTuples: number
  /** dead / (live + dead), 0 when the table is empty. */
  deadRatio: number
  /** Heap size in bytes. */
  tableBytes: number
  /** Heap, indexes and TOAST, in bytes. */
  totalBytes: number
  /** Dead tuples at which autovacuum would start on this table (its threshold + scale factor * rows). */
  autovacuumThreshold: number
  /** True when dead tuples are past autovacuum's threshold and no vacuum is running: autovacuum is behind. */
  autovacuumBehind: boolean
  /** Rows changed since the last analyze. */
  modifiedSinceAnalyze: number
  /** Transactions since the table was last frozen (wraparound guard; autovacuum forces a freeze at 200 million by default). */
  xidAge: number
  lastVacuumAt: Date | null
  lastAutovacuumAt: Date | null
  lastAnalyzeAt: Date | null
  lastAutoanalyzeAt: Date | null
  /** Milliseconds since the last vacuum of either kind; null when it was never vacuumed. */
  msSinceVacuum: number | null
  vacuumCount: number
  autovacuumCount: number
  /** A VACUUM (any kind) is in progress on the table right now. */
  vacuumRunning: boolean
}

/** What the vacuum task did. */
export interface VacuumResult {
  /** The live table's health as read before deciding (null if the table is missing). */
  health: TableHealth | null
  /** True when this run issued VACUUM (ANALYZE, SKIP_LOCKED): it returns at once if another vacuum holds the table. */
  vacuumed: boolean
  /** How long the VACUUM took, when issued. */
  vacuumMs?: number
}

/** @internal */
export function toTableHealth(table: string, r: TableStatsRow): TableHealth {
  const total = r.live_tuples + r.dead_tuples
  const last = [r.last_vacuum, r.last_autovacuum].filter((d): d is Date => d !== null).sort((a, b) => b.getTime() - a.getTime())[0]
  return {
    table,
    liveTuples: r.live_tuples,
    deadTuples: r.dead_tuples,
    deadRatio: total > 0 ? r.dead_tuples / total : 0,
    tableBytes: r.table_bytes,
    totalBytes: r.total_bytes,
    autovacuumThreshold: Math.round(r.autovacuum_threshold),
    autovacuumBehind: r.dead_tuples > r.autovacuum_threshold && !r.vacuum_running,
    modifiedSinceAnalyze: r.mod_since_analyze,
    xidAge: r.xid_age,
    lastVacuumAt: r.last_vacuum,
    lastAutovacuumAt: r.last_autovacuum,
    lastAnalyzeAt: r.last_analyze,
    lastAutoanalyzeAt: r.last_autoanalyze,
    msSinceVacuum: last ? r.now.getTime() - last.getTime() : null,
    vacuumCount: r.vacuum_count,
    autovacuumCount: r.autovacuum_count,
    vacuumRunning: r.vacuum_running,
  }
}

/**
 * Reads the live table's health and runs VACUUM (ANALYZE) on it when its dead tuples reach
 * vacuumDeadTuples and vacuumDeadRatio. The hot table writes several row versions per job (a claim
 * changes the indexed state, so it is never a HOT update), and autovacuum's one-minute nap lets dead
 * index entries pile up in bursts that every claim steps over; the admin owns the table, so it vacuums here.
 */
export async function runLiveTableVacuumTask(ctx: TaskContext): Promise<VacuumResult> {
  const { schema, vacuumDeadTuples, vacuumDeadRatio } = ctx.options
  const row = await tableStatsRead(ctx.db, { schema, table: 'jobs' })
  if (!row) return { health: null, vacuumed: false }
  const health = toTableHealth('jobs', row)
  if (health.vacuumRunning || health.deadTuples < vacuumDeadTuples || health.deadRatio < vacuumDeadRatio || health.deadTuples === 0) {
    return { health, vacuumed: false }
  }
  const started = performance.now()
  await tableVacuum(ctx.pool, { schema, table: 'jobs' })
  const vacuumMs = Math.round(performance.now() - started)
  ctx.logger.debug({ component: 'maintenance', deadTuples: health.deadTuples, vacuumMs }, `maintenance: vacuumed ${schema}.jobs`)
  return { health, vacuumed: true, vacuumMs }
}
