import type pg from 'pg'
import { quoteIdent, unquotedArrayLiteral } from '@pgqueue/core'

/** Anything that runs a query: a pool, a pool client or a client. */
export type Queryable = Pick<pg.Pool, 'query'>

/**
 * A claimed row as the claim returns it (CLAIM_COLUMNS). Timestamps come as epoch milliseconds
 * (float8, parsed by parseFloat): pg's text parser for timestamptz was the largest single cost of
 * reading a claim in the worker's profile. The queue is not returned: the caller claimed from one.
 */
export interface ClaimedRow {
  tenant_id: string
  id: string
  type: string
  key: string | null
  payload: Buffer | null
  payload_type: string | null
  target: unknown
  attempt: number
  max_attempts: number
  retry_policy: unknown
  run_at_ms: number
  created_at_ms: number
  schedule_id: string | null
  priority: number
}

/** One finished run, as the completer hands it to jobFinishMany(). */
export interface FinishInput {
  tenantId: string
  id: string
  /** The run's attempt number: with the lease owner it identifies the run, so a late result of an
   *  earlier run of the same job on this same node is discarded too. */
  attempt: number
  /** completed / failed: to history. retry: back to scheduled after delayMs. release: back to pending
   *  at its old fair position, the attempt not counted (shutdown). */
  outcome: 'completed' | 'failed' | 'retry' | 'release'
  result: Buffer | null
  resultType: string | null
  /** ErrorInfo JSON text. */
  error: string | null
  delayMs: number
}

const CLAIM_COLUMNS = `j.tenant_id, j.id, j.type, j.key, j.payload, j.payload_type, j.target, j.attempt,
  j.max_attempts, j.retry_policy, (extract(epoch from j.run_at) * 1000)::float8 as run_at_ms,
  (extract(epoch from j.created_at) * 1000)::float8 as created_at_ms, j.schedule_id, j.priority`

/**
 * Claims up to `limit` pending jobs of one queue in fair order (priority, then virtual time) and
 * leases them to `nodeId`. Strategy: the inner SELECT walks jobs_claim_idx (queue, priority desc, vt)
 * and locks with SKIP LOCKED, so concurrent workers take disjoint rows without waiting; the UPDATE
 * then reaches the locked rows by ctid (a TID scan over an InitPlan array), not by a primary-key probe
 * each: about 7 us less per claimed job, measured. The ctids stay valid because this statement holds
 * the row locks; a row whose newer version was locked after a concurrent change is invisible to the
 * statement's snapshot at that ctid and is simply not claimed this time. vt is kept, so a job released
 * at shutdown returns to the same fair position.
 * The claim commits without waiting for its WAL flush (synchronous_commit off for this transaction
 * only), which takes about half a millisecond off every pickup. Losing a claim in a server crash
 * loses no job: the row is back to pending and runs again (delivery is at least once), and the
 * completion commits synchronously, which flushes the claim's WAL before it, so a recorded outcome
 * never rests on a lost claim.
 */
export async function jobClaimMany(
  db: Queryable,
  p: { schema: string; queue: string; nodeId: string; leaseMs: number; limit: number; types: string[] | undefined },
): Promise<ClaimedRow[]> {
  const s = quoteIdent(p.schema)
  const typeFilter = p.types ? 'and type = any($5::text[])' : ''
  const text = `
    with picked as (
      select array_agg(ctid) as ctids, set_config('synchronous_commit', 'off', true) as commit_mode from (
        select ctid from ${s}.jobs
         where queue = $1 and state = 'pending' ${typeFilter}
         order by priority desc, vt
         limit $2
         for update skip locked) x)
    update ${s}.jobs j
       set state = 'running', attempt = j.attempt + 1, lease_owner = $3,
           lease_expires_at = now() + $4 * interval '1 millisecond', started_at = now(), updated_at = now()
     where j.ctid = any((select ctids from picked)::tid[])
       and j.state = 'pending'
    returning ${CLAIM_COLUMNS}`
  const values: unknown[] = [p.queue, p.limit, p.nodeId, p.leaseMs]
  if (p.types) values.push(p.types)
  const { rows } = await db.query<ClaimedRow>(text, values)
  return rows
}

/**
 * Distinct queues that have pending jobs, by a recursive skip-scan over jobs_claim_idx: one index
 * probe per queue, however many jobs wait, instead of a scan of the backlog.
 */
export async function jobListPendingQueues(db: Queryable, p: { schema: string; limit: number }): Promise<string[]> {
  const s = quoteIdent(p.schema)
  const { rows } = await db.query<{ queue: string }>(
    `with recursive q as (
       (select queue from ${s}.jobs where state = 'pending' order by queue limit 1)
       union all
       select (select j.queue from ${s}.jobs j where j.state = 'pending' and j.queue > q.queue order by j.queue limit 1)
         from q where q.queue is not null)
     select queue from q where queue is not null limit $1`,
    [p.limit],
  )
  return rows.map((r) => r.queue)
}

/**
 * Records a batch of finished runs in one statement (so one transaction): completed and failed runs
 * are deleted from the live table and inserted into history together; retries go back to scheduled
 * with run_at = now() + backoff and no vt (the Scheduler stamps a fresh one when due); releases go back
 * to pending. Every branch requires lease_owner = this node, state = running and the run's attempt,
 * which is what discards the late result of a run whose lease was lost: a rescued job has no owner,
 * and a re-claimed one has a higher attempt. A cancel_requested job that did not complete is recorded
 * as cancelled instead of being retried. Returns the ids that were recorded.
 * Rows are matched by primary key and lease owner only (the owner is set exactly while a job runs, a
 * constraint since migration 0007): with a `state = 'running'` condition the planner walked every
 * running job of this node through an index of running rows once per input row, quadratic in the local
 * buffer.
 * Each DML unnests the arrays itself, so the function scan drives one primary-key probe per row.
 */
export async function jobFinishMany(db: Queryable, p: { schema: string; nodeId: string; items: FinishInput[] }): Promise<Set<string>> {
  const s = quoteIdent(p.schema)
  const it = p.items
  const n = it.length
  // Columns, built in one pass. uuid[], int[] and the outcome words go as array literals (their text
  // needs no quoting),
  // and an all-null column as an empty array: a multi-argument unnest pads short arrays with nulls.
  const tenantIds = new Array<string>(n)
  const ids = new Array<string>(n)
  const attempts = new Array<number>(n)
  const outcomes = new Array<FinishInput['outcome']>(n)
  const results = new Array<Buffer | null>(n)
  const resultTypes = new Array<string | null>(n)
  const errors = new Array<string | null>(n)
  const delays = new Array<number>(n)
  let anyResult = false
  let anyError = false
  let anyMove = false
  for (let k = 0; k < n; k++) {
    const x = it[k]!
    tenantIds[k] = x.tenantId
    ids[k] = x.id
    attempts[k] = x.attempt
    outcomes[k] = x.outcome
    results[k] = x.result
    resultTypes[k] = x.resultType
    errors[k] = x.error
    delays[k] = x.delayMs
    if (x.result !== null || x.resultType !== null) anyResult = true
    if (x.error !== null) anyError = true
    if (x.outcome === 'retry' || x.outcome === 'release') anyMove = true
  }
  // Retries and releases go back to the live table; a batch of only completed and failed runs (the
  // usual one) skips that statement part, so its second unnest and primary-key probes are not run.
  const moved = anyMove
    ? `,
     moved as (
       update ${s}.jobs j
          set state = case when i.outcome = 'retry' then 'scheduled' else 'pending' end,
              run_at = case when i.outcome = 'retry' then now() + i.delay_ms * interval '1 millisecond' else j.run_at end,
              vt = case when i.outcome = 'retry' then null else j.vt end,
              attempt = case when i.outcome = 'retry' then j.attempt else j.attempt - 1 end,
              last_error = coalesce(i.error, j.last_error),
              started_at = case when i.outcome = 'retry' then j.started_at else null end,
              lease_owner = null, lease_expires_at = null, updated_at = now()
         from unnest($2::text[], $3::uuid[], $4::int[], $5::text[], $8::jsonb[], $9::int[])
              as i(tenant_id, id, attempt, outcome, error, delay_ms)
        where j.tenant_id = i.tenant_id and j.id = i.id and j.attempt = i.attempt
          and j.lease_owner = $1
          and ((i.outcome = 'retry' and not j.cancel_requested) or i.outcome = 'release')
       returning j.id
     )`
    : ''
  const { rows } = await db.query<{ id: string }>(
    `with done as (
       delete from ${s}.jobs j
        using unnest($2::text[], $3::uuid[], $4::int[], $5::text[], $6::bytea[], $7::text[], $8::jsonb[])
              as i(tenant_id, id, attempt, outcome, result, result_type, error)
        where j.tenant_id = i.tenant_id and j.id = i.id and j.attempt = i.attempt
          and j.lease_owner = $1
          and (i.outcome in ('completed', 'failed') or (i.outcome = 'retry' and j.cancel_requested))
       returning j.*, i.outcome, i.result, i.result_type, i.error
     ),
     hist as (
       insert into ${s}.job_history (tenant_id, id, queue, type, key, state, priority, payload, payload_type, target,
                                     result, result_type, error, attempt, max_attempts, schedule_id, retry_of,
                                     worker_id, created_at, run_at, started_at, finished_at)
       select d.tenant_id, d.id, d.queue, d.type, d.key,
              case when d.outcome = 'completed' then 'completed' when d.cancel_requested then 'cancelled' else 'failed' end,
              d.priority, d.payload, d.payload_type, d.target, d.result, d.result_type, d.error, d.attempt,
              d.max_attempts, d.schedule_id, d.retry_of, $1, d.created_at, d.run_at, d.started_at, now()
         from done d
     )${moved}
     select id from done${anyMove ? ' union all select id from moved' : ''}`,
    [
      p.nodeId,
      tenantIds,
      unquotedArrayLiteral(ids),
      unquotedArrayLiteral(attempts),
      unquotedArrayLiteral(outcomes),
      anyResult ? results : '{}',
      anyResult ? resultTypes : '{}',
      anyError ? errors : '{}',
      ...(anyMove ? [unquotedArrayLiteral(delays)] : []),
    ],
  )
  const recorded = new Set<string>()
  for (const r of rows) recorded.add(r.id)
  return recorded
}

/**
 * Renews the leases of all this node's live runs in one statement. Never shortens a lease that
 * ctx.extendLease() made longer. Returns the jobs still leased to this node (with their cancel flag);
 * any run missing from the answer has lost its lease.
 */
export async function jobRenewLeaseMany(
  db: Queryable,
  p: { schema: string; nodeId: string; leaseMs: number; tenantIds: string[]; ids: string[]; attempts: number[] },
): Promise<Map<string, { cancelRequested: boolean }>> {
  const s = quoteIdent(p.schema)
  const { rows } = await db.query<{ id: string; cancel_requested: boolean }>(
    `update ${s}.jobs j
        set lease_expires_at = greatest(j.lease_expires_at, now() + $2 * interval '1 millisecond')
       from unnest($3::text[], $4::uuid[], $5::int[]) as i(tenant_id, id, attempt)
      where j.tenant_id = i.tenant_id and j.id = i.id and j.attempt = i.attempt
        and j.lease_owner = $1
     returning j.id, j.cancel_requested`,
    [p.nodeId, p.leaseMs, p.tenantIds, p.ids, p.attempts],
  )
  return new Map(rows.map((r) => [r.id, { cancelRequested: r.cancel_requested }]))
}

/** Makes one run's lease last at least `ms` from now. False when the lease is no longer this node's. */
export async function jobExtendLease(
  db: Queryable,
  p: { schema: string; nodeId: string; tenantId: string; id: string; attempt: number; ms: number },
): Promise<boolean> {
  const s = quoteIdent(p.schema)
  const { rowCount } = await db.query(
    `update ${s}.jobs set lease_expires_at = greatest(lease_expires_at, now() + $5 * interval '1 millisecond')
      where tenant_id = $2 and id = $3 and attempt = $4 and lease_owner = $1 and state = 'running'`,
    [p.nodeId, p.tenantId, p.id, p.attempt, p.ms],
  )
  return (rowCount ?? 0) > 0
}
