import { ERROR_CODES, errorRecordSql } from '../error-info.js'
import { quoteIdent } from '../options.js'
import type { Queryable } from '../queryable.js'
import { flowSettleSql } from './flows.js'
import { jobHistoryInsertSql } from './job-history.js'

/** What one rescue statement did. */
export interface RescueCounts {
  /** Jobs sent back to wait (scheduled, due now) with attempts left. */
  rescued: number
  /** Jobs moved to history as failed: their attempts were spent. */
  failed: number
  /** Jobs moved to history as cancelled: a cancel was requested while they ran. */
  cancelled: number
}

/**
 * The one lease rescue, used by the Scheduler (grace 0, every second) and by Maintenance (a long
 * grace, the safety net). Takes up to `limit` running jobs whose lease expired more than `graceMs` ago
 * (database time), in one statement: a job whose cancel was requested moves to history as cancelled;
 * a job whose attempts are spent moves to history as failed; any other goes back to scheduled, due
 * now, with no owner (so a late result from the old owner is discarded by its lease check). Each
 * gets the same LEASE_EXPIRED error record. The attempt was counted by the claim, so a job that keeps
 * killing its worker ends failed after max_attempts. SKIP LOCKED: a worker finishing the job, or
 * another rescuer, holds the row and keeps it. The running rows are read through jobs_state_idx (the
 * jobs in flight, a small set; lease_expires_at has no index, so renewals are HOT updates).
 * A flow job that ends here (failed or cancelled) settles its waiting children in the same statement
 * (flowSettleSql); one sent back to wait keeps them waiting.
 */
export async function jobRescueExpired(db: Queryable, p: { schema: string; limit: number; graceMs?: number }): Promise<RescueCounts> {
  const s = quoteIdent(p.schema)
  const error = (alias: string) =>
    errorRecordSql({ message: 'lease expired', name: 'LeaseExpiredError', code: ERROR_CODES.leaseExpired, attempt: `${alias}.attempt` })
  const { rows } = await db.query<RescueCounts>(
    `with expired as (
       select tenant_id, id from ${s}.jobs
        where state = 'running' and lease_expires_at < now() - $2 * interval '1 millisecond'
        order by lease_expires_at
        limit $1
        for update skip locked
     ),
     gone as (
       delete from ${s}.jobs j using expired e
        where j.tenant_id = e.tenant_id and j.id = e.id and (j.attempt >= j.max_attempts or j.cancel_requested)
       returning j.*
     ),
     hist as (
       ${jobHistoryInsertSql({
         schema: p.schema,
         from: 'gone g',
         alias: 'g',
         values: { state: `case when g.cancel_requested then 'cancelled' else 'failed' end`, error: error('g') },
       })}
     ),
     ${flowSettleSql({ schema: p.schema, from: 'gone g', alias: 'g', state: `case when g.cancel_requested then 'cancelled' else 'failed' end`, error: error('g') })},
     back as (
       update ${s}.jobs j
          set state = 'scheduled', run_at = now(), vt = null, lease_owner = null, lease_expires_at = null,
              last_error = ${error('j')}, updated_at = now()
         from expired e
        where j.tenant_id = e.tenant_id and j.id = e.id and j.attempt < j.max_attempts and not j.cancel_requested
       returning 1
     )
     select (select count(*) from back)::int as rescued,
            (select count(*) from gone where not cancel_requested)::int as failed,
            (select count(*) from gone where cancel_requested)::int as cancelled
      where (select count(*) from flowed) >= 0`,
    [p.limit, Math.max(0, p.graceMs ?? 0)],
  )
  return rows[0] ?? { rescued: 0, failed: 0, cancelled: 0 }
}
