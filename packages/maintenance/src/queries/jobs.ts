import { sql, type Kysely } from 'kysely'
import { quoteIdent } from '@pgqueue/core/internal'

/**
 * Rescues up to `limit` running jobs whose lease expired more than `graceMs` ago (database time):
 * a job with attempts left goes back to 'scheduled' with run_at = now() (the Scheduler stamps its fair
 * virtual time when it promotes it); a job whose attempts are spent moves to history as failed, its
 * live row deleted in the same statement, so it is in exactly one place at every instant.
 * SKIP LOCKED: a worker finishing the job, or the Scheduler's own rescue, holds the row; we skip it.
 * The running rows are read through jobs_state_idx (a small set: the jobs in flight), oldest expiry first.
 */
export async function jobsOrphanedLeasesRescue(
  trx: Kysely<any>,
  schema: string,
  p: { graceMs: number; limit: number },
): Promise<{ rescued: number; failed: number }> {
  const s = quoteIdent(schema)
  const { rows } = await sql<{ rescued: number; failed: number }>`
    with expired as (
      select tenant_id, id from ${sql.raw(`${s}.jobs`)}
       where state = 'running' and lease_expires_at < now() - make_interval(secs => ${p.graceMs / 1000})
       order by lease_expires_at
       limit ${p.limit}
       for update skip locked
    ),
    retried as (
      update ${sql.raw(`${s}.jobs`)} j
         set state = 'scheduled', run_at = now(), vt = null, lease_owner = null, lease_expires_at = null,
             last_error = jsonb_build_object('message', 'lease expired; rescued by maintenance', 'code', 'LEASE_EXPIRED',
                                             'leaseOwner', j.lease_owner, 'leaseExpiredAt', j.lease_expires_at),
             updated_at = now()
        from expired e
       where j.tenant_id = e.tenant_id and j.id = e.id and j.attempt < j.max_attempts
      returning j.id
    ),
    spent as (
      delete from ${sql.raw(`${s}.jobs`)} j using expired e
       where j.tenant_id = e.tenant_id and j.id = e.id and j.attempt >= j.max_attempts
      returning j.*
    ),
    failed as (
      insert into ${sql.raw(`${s}.job_history`)} (tenant_id, id, queue, type, key, state, priority, payload, payload_type,
             target, error, attempt, max_attempts, schedule_id, retry_of, worker_id, created_at, run_at, started_at, finished_at)
      select tenant_id, id, queue, type, key, 'failed', priority, payload, payload_type, target,
             jsonb_build_object('message', 'lease expired and attempts are spent; failed by maintenance', 'code', 'LEASE_EXPIRED',
                                'leaseOwner', lease_owner, 'leaseExpiredAt', lease_expires_at),
             attempt, max_attempts, schedule_id, retry_of, lease_owner, created_at, run_at, started_at, now()
        from spent
      returning 1
    )
    select (select count(*) from retried)::int as rescued, (select count(*) from failed)::int as failed`.execute(trx)
  return rows[0] ?? { rescued: 0, failed: 0 }
}
