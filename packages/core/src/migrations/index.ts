import initial from './0001_initial.js'
import pushQueueRetryPolicy from './0002_push_queue_retry_policy.js'
import schedulesTenantDue from './0004_schedules_tenant_due.js'
import holdJobs from './0006_hold_jobs.js'
import leaseOwnerRunning from './0007_lease_owner_running.js'
import fairClockPlans from './0008_fair_clock_plans.js'
import statsRollups from './0009_stats_rollups.js'
import historyFinishedBrin from './0010_history_finished_brin.js'
import jobsStateIndex from './0011_jobs_state_index.js'
import tenantCredential from './0012_tenant_credential.js'
import limitsAndLocks from './0013_limits_and_locks.js'
import fairClockTry from './0014_fair_clock_try.js'
import fairOrder from './0015_fair_order.js'

/** One forward-only schema change. `sql` is a template; see renderMigration(). */
export interface Migration {
  version: number
  name: string
  sql: string
}

/** Every migration, in order. Append only: released entries are never edited or renumbered. */
export const migrations: readonly Migration[] = [
  { version: 1, name: 'initial', sql: initial },
  { version: 2, name: 'push_queue_retry_policy', sql: pushQueueRetryPolicy },
  { version: 4, name: 'schedules_tenant_due', sql: schedulesTenantDue },
  { version: 6, name: 'hold_jobs', sql: holdJobs },
  { version: 7, name: 'lease_owner_running', sql: leaseOwnerRunning },
  { version: 8, name: 'fair_clock_plans', sql: fairClockPlans },
  { version: 9, name: 'stats_rollups', sql: statsRollups },
  { version: 10, name: 'history_finished_brin', sql: historyFinishedBrin },
  { version: 11, name: 'jobs_state_index', sql: jobsStateIndex },
  { version: 12, name: 'tenant_credential', sql: tenantCredential },
  { version: 13, name: 'limits_and_locks', sql: limitsAndLocks },
  { version: 14, name: 'fair_clock_try', sql: fairClockTry },
  { version: 15, name: 'fair_order', sql: fairOrder },
]
