import type { Kysely } from 'kysely'
import type pg from 'pg'
import type { Database, Logger } from '@pgqueue/core/internal'
import type { ResolvedMaintenanceOptions } from '../options.js'

/** What every task gets: the admin connection, the resolved options and the logger. @internal */
export interface TaskContext {
  db: Kysely<Database>
  pool: pg.Pool
  options: ResolvedMaintenanceOptions
  logger: Logger
}

/** Why a task did nothing this time: another instance holds its lock, or a table lock wait timed out. */
export type SkipReason = 'locked' | 'lock-timeout'
