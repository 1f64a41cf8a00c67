import { flowSettleSql, jobHistoryInsertSql, quoteIdent, unquotedArrayLiteral, type Queryable } from '@pgqueue/core/internal'

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
  flow_id: string | null
  /** The pushing span's W3C carrier, or null (migration 0020). */
  trace_context: unknown
}

/** One finished run, as the completer hands it to jobFinishMany(). */
export interface FinishInput {
  tenantId: string
  id: string
  /** The run's lease owner as its claim wrote it (node id plus a claim token): it identifies the run,
   *  so a late result of an earlier run of the same job (rescued, replaced by key, claimed again by
   *  this same node) matches no row and is discarded. */
  owner: string
  /** completed / failed: to history. retry: back to scheduled after delayMs. release: back to pending
   *  at its old fair position, the attempt not counted (shutdown). backoff: to held, the attempt not
   *  counted, and the (tenant, queue) blocked for delayMs (see jobFinishMany). */
  outcome: 'completed' | 'failed' | 'retry' | 'release' | 'backoff'
  result: Buffer | null
  resultType: string | null
  /** ErrorInfo JSON text. */
  error: string | null
  /** Retry backoff in ms; may exceed 2^31 (policies allow a year), so it travels as bigint. */
  delayMs: number
}

/** The key of a run's row in the answers below: ids are unique per tenant only. */
export function rowKey(tenantId: string, id: string): string {
  return `${tenantId}\u0000${id}`
}

const CLAIM_COLUMNS = `j.tenant_id, j.id, j.type, j.key, j.payload, j.payload_type, j.target, j.attempt,
  j.max_attempts, j.retry_policy, (extract(epoch from j.run_at) * 1000)::float8 as run_at_ms,
  (extract(epoch from j.created_at) * 1000)::float8 as created_at_ms, j.schedule_id, j.priority, j.flow_id, j.trace_context`

/** The bytes a claimed row brings into the worker's memory (payload plus target), as SQL over `j`. */
const ROW_BYTES = `coalesce(octet_length(j.payload), 0)
  + case when j.target is null then 0
         when pg_column_size(j.target) <= 2048 then pg_column_size(j.target)
         else octet_length(j.target::text) end`

/**
 * Claims up to `limit` pending jobs of one queue in fair order (vt: each tenant's slots, see
 * jobClaimManyByPriority()) and leases them to `owner` (the node id plus a token unique to this claim,
 * see FinishInput.owner). The plain claim, for a queue whose pending jobs all have priority 0, where
 * the slots are the jobs: the inner SELECT walks jobs_claim_idx (queue, vt, id), from `from` when given
 * (see ClaimPosition) and from the queue's lowest entry otherwise, and locks with SKIP LOCKED,
 * so concurrent workers take disjoint rows without waiting; the UPDATE then reaches the locked rows by
 * ctid (a TID scan over an InitPlan array), not by a primary-key probe each. The ctids stay valid
 * because this statement holds the row locks; a row whose newer version was locked after a concurrent
 * change is invisible to the statement's snapshot at that ctid and is simply not claimed this time.
 * vt is kept, so a job released at shutdown returns to the same fair position. The worker sorts the
 * rows by (vt, id) (they come back in ctid order), so its buffer interleaves tenants as the order does.
 * Byte budget: rows are taken in claim order while the bytes of the rows before them (payload plus
 * target) stay under `maxBytes`, so one claim never carries more than about maxBytes plus one row
 * into the worker's memory, and always at least one row. octet_length of a bytea reads the stored
 * size without detoasting; a target is serialised for its size only when it is stored large
 * (pg_column_size over 2 kB, where compression could hide its real size). Rows locked but left out
 * are unlocked at commit, untouched. The running sum takes the rows in the order they come from the
 * index scan: an ORDER BY in the window would add a sort, as the planner does not carry the order
 * through the row locking.
 * The claim commits without waiting for its WAL flush (synchronous_commit off for this transaction
 * only), which takes about half a millisecond off every pickup. Losing a claim in a server crash
 * loses no job: the row is back to pending and runs again (delivery is at least once), and the
 * completion commits synchronously, which flushes the claim's WAL before it, so a recorded outcome
 * never rests on a lost claim.
 */
export async function jobClaimMany(
  db: Queryable,
  p: {
    schema: string; queue: string; owner: string; leaseMs: number; limit: number; maxBytes: number; types: string[] | undefined
    /** Start the walk at this (vt, id) instead of the queue's lowest entry (see ClaimPosition). */
    from?: ClaimPosition
  },
): Promise<(ClaimedRow & { vt: string })[]> {
  const s = quoteIdent(p.schema)
  const typeFilter = p.types ? 'and j.type = any($6::text[])' : ''
  const from = p.from ? `and (j.vt, j.id) >= ($${p.types ? 7 : 6}::bigint, $${p.types ? 8 : 7}::uuid)` : ''
  const text = `
    with picked as (
      select array_agg(ctid) filter (where before is null or before < $5) as ctids,
             set_config('synchronous_commit', 'off', true) as commit_mode from (
        select ctid, sum(bytes) over (rows between unbounded preceding and 1 preceding) as before from (
          select j.ctid, ${ROW_BYTES} as bytes
            from ${s}.jobs j
           where j.queue = $1 and j.state = 'pending' ${typeFilter} ${from}
           order by j.vt, j.id
           limit $2
           for update skip locked) l) x)
    update ${s}.jobs j
       set state = 'running', attempt = j.attempt + 1, lease_owner = $3,
           lease_expires_at = now() + $4 * interval '1 millisecond', started_at = now(), updated_at = now()
     where j.ctid = any((select ctids from picked)::tid[])
       -- Compared with a subquery's value, not a constant: that does not match jobs_claim_idx's
       -- predicate, so the planner cannot read the whole index instead of the TIDs (it did when the
       -- table's statistics were small, and under an old snapshot the index holds every job run since).
       and j.state = (select 'pending')
    returning ${CLAIM_COLUMNS}, j.vt`
  const values: unknown[] = [p.queue, p.limit, p.owner, p.leaseMs, p.maxBytes]
  if (p.types) values.push(p.types)
  if (p.from) values.push(p.from.vt, p.from.id)
  const { rows } = await db.query<ClaimedRow & { vt: string }>(text, values)
  rows.sort(comparePositions)
  return rows
}

/**
 * A place in a queue's fair order: a pending job's vt (bigint, as text) and id, the key of
 * jobs_claim_idx after the queue (migration 0023). The plain claim can resume its walk there instead
 * of at the queue's lowest entry: every job it leases leaves a dead entry at the low end of the index
 * until VACUUM, and while any older transaction is open on the server (in any database) scans cannot
 * mark those entries dead, so a walk from the lowest entry reads the heap row of every job claimed
 * since then.
 */
export interface ClaimPosition {
  vt: string
  id: string
}

/** Orders positions as jobs_claim_idx does: vt (a non-negative bigint as text: length, then digits), then id. */
export function comparePositions(a: ClaimPosition, b: ClaimPosition): number {
  return a.vt.length - b.vt.length || (a.vt < b.vt ? -1 : a.vt > b.vt ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
}

/**
 * True when some pending job of `queue` has a priority other than 0: one probe of jobs_priority_idx,
 * an index that stays empty while nobody uses priorities. The Worker asks this to choose between
 * jobClaimMany() and jobClaimManyByPriority().
 */
export async function jobQueueHasPriorities(db: Queryable, p: { schema: string; queue: string }): Promise<boolean> {
  const { rows } = await db.query<{ mixed: boolean }>(
    `select exists (select 1 from ${quoteIdent(p.schema)}.jobs where queue = $1 and state = 'pending' and priority <> 0) as mixed`,
    [p.queue],
  )
  return rows[0]?.mixed === true
}

/**
 * Claims up to `limit` pending jobs of one queue in fair order, for a queue where some pending job has
 * a priority other than 0 (see jobClaimMany() for the plain claim, and the Worker's choice between
 * them), and leases them to `owner` (the node id plus a token unique to this claim).
 * Fair order: a pending job's vt is its tenant's slot in the queue (stamped at push by the tenant's
 * fair clock); priority only decides which of the tenant's own jobs fills a slot, so it never moves a
 * tenant ahead of another (issue 18). The claim takes the `limit` lowest slots over jobs_claim_idx
 * (queue, vt, id) with SKIP LOCKED, counts them per tenant, and gives each tenant that many of its own
 * jobs in (priority desc, vt) order over jobs_tenant_claim_idx. A tenant whose pending jobs all have
 * the priority of its slots (one index probe tells: its highest priority is not above its slots'
 * lowest) has its slots claimed as they are; only a tenant with higher-priority jobs waiting runs the
 * LATERAL top-n, whose gating filter skips it for the others. So a queue where every priority is
 * equal costs one probe per tenant in the batch more than a plain vt-ordered claim.
 * Slots locked but not claimed (replaced by a tenant's higher-priority jobs) are unlocked at commit,
 * untouched. Concurrent workers take disjoint slots, and SKIP LOCKED in the top-n keeps them off each
 * other's rows.
 * The UPDATE by ctid, the byte budget and the commit without a WAL flush work as in jobClaimMany().
 */
export async function jobClaimManyByPriority(
  db: Queryable,
  p: { schema: string; queue: string; owner: string; leaseMs: number; limit: number; maxBytes: number; types: string[] | undefined },
): Promise<ClaimedRow[]> {
  const s = quoteIdent(p.schema)
  const typeFilter = p.types ? 'and j.type = any($6::text[])' : ''
  const text = `
    with slots as materialized (
      select j.ctid, j.tenant_id, j.id, j.priority, j.vt, ${ROW_BYTES} as bytes
        from ${s}.jobs j
       where j.queue = $1 and j.state = 'pending' ${typeFilter}
       order by j.vt
       limit $2
       for update skip locked
    ),
    tenants as materialized (
      select t.tenant_id, t.n, t.slots,
             (select j.priority from ${s}.jobs j
               where j.tenant_id = t.tenant_id and j.queue = $1 and j.state = 'pending' ${typeFilter}
               order by j.priority desc limit 1) > t.lowest as reorder
        from (select tenant_id, count(*) as n, min(priority) as lowest, array_agg(vt order by vt) as slots
                from slots group by tenant_id) t
    ),
    chosen as materialized (
      select sl.ctid, sl.tenant_id, sl.id, sl.vt as slot, sl.bytes from slots sl join tenants t on t.tenant_id = sl.tenant_id
       where not t.reorder
      union all
      select o.ctid, t.tenant_id, o.id, t.slots[o.k], o.bytes from tenants t
       cross join lateral (
         select j.ctid, j.id, ${ROW_BYTES} as bytes, row_number() over () as k from (
           select j.ctid, j.id, j.payload, j.target from ${s}.jobs j
            where t.reorder and j.tenant_id = t.tenant_id and j.queue = $1 and j.state = 'pending' ${typeFilter}
            order by j.priority desc, j.vt
            limit t.n
            for update skip locked) j) o
    ),
    picked as (
      select array_agg(ctid) filter (where before is null or before < $5) as ctids,
             set_config('synchronous_commit', 'off', true) as commit_mode from (
        select ctid, sum(bytes) over (order by slot rows between unbounded preceding and 1 preceding) as before from chosen) x),
    claimed as (
      update ${s}.jobs j
         set state = 'running', attempt = j.attempt + 1, lease_owner = $3,
             lease_expires_at = now() + $4 * interval '1 millisecond', started_at = now(), updated_at = now()
       where j.ctid = any((select ctids from picked)::tid[])
         and j.state = 'pending'
      returning ${CLAIM_COLUMNS})
    -- In slot order, so the worker's buffer interleaves tenants as the fair order does.
    select c.* from claimed c join chosen ch on ch.tenant_id = c.tenant_id and ch.id = c.id order by ch.slot`
  const values: unknown[] = [p.queue, p.limit, p.owner, p.leaseMs, p.maxBytes]
  if (p.types) values.push(p.types)
  const { rows } = await db.query<ClaimedRow>(text, values)
  return rows
}

/** A row of jobClaimAcrossQueues(): a claimed job (its queue included), or none when nothing was claimed. */
export type ClaimedAnyRow = (ClaimedRow & { queue: string }) | { [K in keyof ClaimedRow]: null } & { queue: null }

/**
 * Claims up to `limit` pending jobs from every queue, for a Worker that serves them all, so that a
 * tenant's share does not grow with the number of queues it creates (issue 18). Tenants with pending
 * jobs are found by a recursive skip-scan over jobs_tenant_claim_idx from `afterTenant` (one index
 * probe per tenant, at most `limit` tenants, so no list of queue names to outgrow); each tenant gets
 * one of its queues, the first after the one it was last served from (`lastQueues`, the caller's
 * memory; rotating, so every queue of a tenant gets its turn), and an equal quantum of that queue's
 * jobs in the tenant's own order (priority desc, vt), with SKIP LOCKED. Rows come back round-robin
 * across tenants (each tenant's first job, then each one's second...), so a small buffer interleaves
 * them. Every row also carries `last_tenant` and `tenants`, the cursor's next value and how many
 * tenants the round visited (a row of nulls but for those when nothing was claimed): fewer than
 * `limit` means the skip-scan reached the last tenant, and the next round starts from the first.
 * Byte budget, ctid update and commit mode as in jobClaimMany().
 */
export async function jobClaimAcrossQueues(
  db: Queryable,
  p: {
    schema: string; afterTenant: string; lastQueues: Map<string, string>; owner: string; leaseMs: number; limit: number
    maxBytes: number; types: string[] | undefined
  },
): Promise<{ rows: (ClaimedRow & { queue: string })[]; lastTenant: string | null; tenants: number }> {
  const s = quoteIdent(p.schema)
  const typeFilter = p.types ? 'and j.type = any($9::text[])' : ''
  const text = `
    with recursive t as (
      (select j.tenant_id from ${s}.jobs j where j.state = 'pending' and j.tenant_id > $1 order by j.tenant_id limit 1)
      union all
      select (select j.tenant_id from ${s}.jobs j where j.state = 'pending' and j.tenant_id > t.tenant_id
               order by j.tenant_id limit 1)
        from t where t.tenant_id is not null
    ),
    tenants as materialized (select tenant_id from t where tenant_id is not null limit $2),
    pairs as materialized (
      select tn.tenant_id,
             coalesce((select j.queue from ${s}.jobs j where j.tenant_id = tn.tenant_id and j.state = 'pending'
                          and j.queue > c.last_queue order by j.queue limit 1),
                      (select j.queue from ${s}.jobs j where j.tenant_id = tn.tenant_id and j.state = 'pending'
                        order by j.queue limit 1)) as queue,
             row_number() over (order by tn.tenant_id) as pos
        from tenants tn
        left join unnest($3::text[], $4::text[]) as c(tenant_id, last_queue) on c.tenant_id = tn.tenant_id
    ),
    chosen as materialized (
      select o.ctid, p.tenant_id, o.id, p.pos, o.k, o.bytes from pairs p
       cross join lateral (
         select j.ctid, j.id, ${ROW_BYTES} as bytes, row_number() over () as k from (
           select j.ctid, j.id, j.payload, j.target from ${s}.jobs j
            where j.tenant_id = p.tenant_id and j.queue = p.queue and j.state = 'pending' ${typeFilter}
            order by j.priority desc, j.vt
            limit ceil($5::numeric / (select count(*) from pairs))::bigint
            for update skip locked) j) o
    ),
    picked as (
      select array_agg(ctid) filter (where rank <= $5 and (before is null or before < $8)) as ctids,
             set_config('synchronous_commit', 'off', true) as commit_mode from (
        select ctid, row_number() over w as rank, sum(bytes) over (w rows between unbounded preceding and 1 preceding) as before
          from chosen window w as (order by k, pos)) x),
    claimed as (
      update ${s}.jobs j
         set state = 'running', attempt = j.attempt + 1, lease_owner = $6,
             lease_expires_at = now() + $7 * interval '1 millisecond', started_at = now(), updated_at = now()
       where j.ctid = any((select ctids from picked)::tid[])
         and j.state = 'pending'
      returning ${CLAIM_COLUMNS}, j.queue)
    select c.*, m.last_tenant, m.tenants
      from (select max(tenant_id) as last_tenant, count(*)::int as tenants from tenants) m
      left join (claimed c join chosen ch on ch.tenant_id = c.tenant_id and ch.id = c.id) on true
     order by ch.k, ch.pos`
  const values: unknown[] = [p.afterTenant, p.limit, [...p.lastQueues.keys()], [...p.lastQueues.values()], p.limit, p.owner, p.leaseMs, p.maxBytes]
  if (p.types) values.push(p.types)
  const { rows } = await db.query<ClaimedAnyRow & { last_tenant: string | null; tenants: number }>(text, values)
  const first = rows[0]
  return {
    rows: rows.filter((r): r is ClaimedRow & { queue: string; last_tenant: string | null; tenants: number } => r.id !== null),
    lastTenant: first?.last_tenant ?? null,
    tenants: first?.tenants ?? 0,
  }
}

/**
 * Records a batch of finished runs in one statement (so one transaction): completed and failed runs
 * are deleted from the live table and inserted into history together (a completed run of a queue that
 * keeps no completed history is counted in completion_counts instead, see finishCountInsert());
 * retries go back to scheduled with run_at = now() + backoff and no vt (the Scheduler stamps a fresh
 * one when due); releases go back to pending with the attempt given back. Every branch requires the run's exact lease owner (node id
 * plus claim token), which is what discards the late result of a run whose lease was lost: a rescued
 * job has no owner, and a re-claimed or replaced one has another token, even when its attempt number
 * came round again. A cancel_requested job that did not complete is recorded as cancelled instead of
 * being retried. Returns the positions in `items` of the runs recorded (the unnest's ordinality, so
 * the answer carries small integers rather than keys to rebuild).
 * Rows are matched by primary key and lease owner only (the owner is set exactly while a job runs, a
 * constraint since migration 0007): with a `state = 'running'` condition the planner walked every
 * running job of this node through an index of running rows once per input row, quadratic in the local
 * buffer.
 * Each DML unnests the arrays itself, so the function scan drives one primary-key probe per row.
 * Row lock waits are bounded by `lockTimeoutMs`; see jobLockedAmong() for finding the rows at fault.
 * Flow jobs among the finished runs settle their flows in the same statement (the `flowed` part:
 * children released or cancelled), so a child is released by the commit that records its last
 * parent's outcome; runs outside flows skip the call.
 */
export async function jobFinishMany(
  db: Queryable,
  p: { schema: string; nodeId: string; items: FinishInput[]; lockTimeoutMs: number },
): Promise<Set<number>> {
  const s = quoteIdent(p.schema)
  // A lock wait of this statement is bounded (55P03 past it): a row held by a tenant's open transaction
  // (a push by key on a running job locks it) must not stall every completion of the worker. The
  // setting is made by a one-time filter (an InitPlan, run before the first row is locked) and lasts
  // for this statement's transaction only.
  const waitAtMost = `(select set_config('lock_timeout', '${Math.max(1, Math.floor(p.lockTimeoutMs))}', true)) is not null`
  const it = p.items
  const n = it.length
  // Columns, built in one pass. uuid[], bigint[] and the outcome words go as array literals (their
  // text needs no quoting), and an all-null column as an empty array: a multi-argument unnest pads
  // short arrays with nulls.
  const tenantIds = new Array<string>(n)
  const ids = new Array<string>(n)
  const owners = new Array<string>(n)
  const outcomes = new Array<FinishInput['outcome']>(n)
  const results = new Array<Buffer | null>(n)
  const resultTypes = new Array<string | null>(n)
  const errors = new Array<string | null>(n)
  const delays = new Array<number>(n)
  let anyResult = false
  let anyError = false
  let anyMove = false
  let anyBackOff = false
  for (let k = 0; k < n; k++) {
    const x = it[k]!
    tenantIds[k] = x.tenantId
    ids[k] = x.id
    owners[k] = x.owner
    outcomes[k] = x.outcome
    results[k] = x.result
    resultTypes[k] = x.resultType
    errors[k] = x.error
    delays[k] = Math.max(0, Math.round(x.delayMs))
    if (x.result !== null || x.resultType !== null) anyResult = true
    if (x.error !== null) anyError = true
    if (x.outcome === 'retry' || x.outcome === 'release') anyMove = true
    if (x.outcome === 'backoff') anyMove = anyBackOff = true
  }
  // Retries and releases go back to the live table; a batch of only completed and failed runs (the
  // usual one) skips that statement part, so its second unnest and primary-key probes are not run.
  // A back-off (rare) also blocks its (tenant, queue) until now() + delay, extending a block already
  // there, and parks the pair's pending jobs in held, where the Scheduler's releaser leaves them until
  // the block has passed; pushes to a blocked pair go to held as well (push_jobs). So the tenant waits
  // on every Worker while no claim has to step over its jobs.
  const backedOff = anyBackOff
    ? `,
     blocked as (
       insert into ${s}.fair_blocks as b (tenant_id, queue, until)
       select m.tenant_id, m.queue, now() + max(m.delay_ms) * interval '1 millisecond' from moved m
        where m.outcome = 'backoff' group by m.tenant_id, m.queue
       on conflict (tenant_id, queue) do update set until = greatest(b.until, excluded.until)
     ),
     parked as (
       update ${s}.jobs h set state = 'held', vt = null, updated_at = now()
         from (select distinct m.tenant_id, m.queue from moved m where m.outcome = 'backoff') m
        where h.tenant_id = m.tenant_id and h.queue = m.queue and h.state = 'pending'
     )`
    : ''
  // Retries, releases and back-offs go back to the live table; a batch of only completed and failed
  // runs (the usual one) skips that statement part, so its second unnest and primary-key probes are
  // not run.
  const moved = anyMove
    ? `,
     moved as (
       update ${s}.jobs j
          set state = case when i.outcome = 'retry' then 'scheduled' when i.outcome = 'backoff' then 'held' else 'pending' end,
              run_at = case when i.outcome = 'retry' then now() + i.delay_ms * interval '1 millisecond' else j.run_at end,
              vt = case when i.outcome = 'release' then j.vt end,
              attempt = case when i.outcome = 'retry' then j.attempt else j.attempt - 1 end,
              last_error = coalesce(i.error, j.last_error),
              started_at = case when i.outcome = 'retry' then j.started_at else null end,
              lease_owner = null, lease_expires_at = null, updated_at = now()
         from unnest($2::text[], $3::uuid[], $4::text[], $5::text[], $8::jsonb[], $9::int8[]) with ordinality
              as i(tenant_id, id, owner, outcome, error, delay_ms, n)
        where j.tenant_id = i.tenant_id and j.id = i.id and j.lease_owner = i.owner
          and ((i.outcome = 'retry' and not j.cancel_requested) or i.outcome in ('release', 'backoff'))
          and ${waitAtMost}
       returning i.n::int4 as n, j.tenant_id, j.queue, i.outcome, i.delay_ms
     )${backedOff}`
    : ''
  const { rows } = await db.query<{ n: number }>(
    `with done as (
       delete from ${s}.jobs j
        using unnest($2::text[], $3::uuid[], $4::text[], $5::text[], $6::bytea[], $7::text[], $8::jsonb[]) with ordinality
              as i(tenant_id, id, owner, outcome, result, result_type, error, n)
        where j.tenant_id = i.tenant_id and j.id = i.id and j.lease_owner = i.owner
          and (i.outcome in ('completed', 'failed') or (i.outcome = 'retry' and j.cancel_requested))
          and ${waitAtMost}
       returning j.*, i.outcome, i.result, i.result_type, i.error, i.n::int4 as n
     ),
     dropping as (
       ${finishDroppingSql(s)}
     ),
     hist as (
       ${finishHistoryInsert(p.schema)}
     ),
     counted as (
       ${finishCountInsert(p.schema)}
     ),
     ${finishFlowSettle(p.schema)}${moved}
     select n from done where (select count(*) from flowed) >= 0${anyMove ? ' union all select n from moved' : ''}`,
    [
      p.nodeId,
      tenantIds,
      unquotedArrayLiteral(ids),
      ownersLiteral(owners),
      unquotedArrayLiteral(outcomes),
      anyResult ? results : '{}',
      anyResult ? resultTypes : '{}',
      anyError ? errors : '{}',
      ...(anyMove ? [unquotedArrayLiteral(delays)] : []),
    ],
  )
  const recorded = new Set<number>()
  for (const r of rows) recorded.add(r.n - 1)
  return recorded
}

/**
 * The (tenant, queue) pairs of the batch's completed runs whose queue keeps no completed history
 * (queues.keep_completed, read in the completion statement itself, so a change applies to the next
 * batch): one queues probe per distinct pair, not per run, and none at all while no queue drops
 * (the first condition is a one-time probe of queues_drop_completed_idx, empty then).
 */
function finishDroppingSql(s: string): string {
  return `select p.tenant_id, p.queue from (select distinct d.tenant_id, d.queue from done d where d.outcome = 'completed') p
        where (select exists (select 1 from ${s}.queues q where not q.keep_completed))
          and exists (select 1 from ${s}.queues q where q.tenant_id = p.tenant_id and q.queue = p.queue and not q.keep_completed)`
}

/** True for a run of `done d` that is a completion dropped from history (see finishDroppingSql()). The
 *  coalesce keeps the IN a hashed subplan: pulled up into a semi-join, it was planned as a nested loop
 *  over the CTE (runs times pairs). */
const DROPPED = `d.outcome = 'completed' and coalesce((d.tenant_id, d.queue) in (select x.tenant_id, x.queue from dropping x), false)`

/** The history state of a finished run in jobFinishMany's `done`. */
const FINISH_STATE = `case when d.outcome = 'completed' then 'completed' when d.cancel_requested then 'cancelled' else 'failed' end`

/** SQL text built once per schema: the parts of jobFinishMany depend on nothing else. */
function perSchema(build: (schema: string) => string): (schema: string) => string {
  const built = new Map<string, string>()
  return (schema) => {
    let text = built.get(schema)
    if (text === undefined) {
      text = build(schema)
      built.set(schema, text)
    }
    return text
  }
}

/** The history part of jobFinishMany: every run but the dropped completions. */
const finishHistoryInsert = perSchema((schema) =>
  jobHistoryInsertSql({
    schema,
    from: 'done d',
    alias: 'd',
    where: `not (${DROPPED})`,
    values: {
      state: FINISH_STATE,
      result: 'd.result',
      result_type: 'd.result_type',
      error: 'd.error',
      worker_id: '$1',
    },
  }),
)

/**
 * The counting part of jobFinishMany: the dropped completions, one completion_counts row per
 * (tenant, queue) of the batch (an append, never an update another worker waits on), with each
 * completion's wait and run latency_bucket(), measured as the rollups measure history rows
 * (finished_at is now(), the row's default). The readers count the buckets into histograms, so this
 * statement calls no function per group. Stats and the rollups add these rows to history's completed
 * counts.
 */
const finishCountInsert = perSchema((schema) => {
  const s = quoteIdent(schema)
  return `insert into ${s}.completion_counts (tenant_id, queue, id, completed, wait_buckets, run_buckets)
       select d.tenant_id, d.queue, (array_agg(d.id))[1], count(*),
              array_agg(${s}.latency_bucket(greatest(extract(epoch from d.started_at - d.run_at) * 1000, 0)::float8)::int2),
              array_agg(${s}.latency_bucket(greatest(extract(epoch from now() - d.started_at) * 1000, 0)::float8)::int2)
         from done d
        where ${DROPPED}
        group by d.tenant_id, d.queue`
})

/** The flow part of jobFinishMany (see flowSettleSql: no call unless a finished row is a flow job). */
const finishFlowSettle = perSchema((schema) =>
  flowSettleSql({
    schema,
    from: 'done d',
    alias: 'd',
    state: FINISH_STATE,
    result: 'd.result',
    resultType: 'd.result_type',
    error: 'd.error',
  }),
)

/** Owners go as an unquoted literal when no character needs quoting there (the usual node ids), which
 *  spares pg's per-element escaping on the hot path; an owner always holds a slash, so never reads as NULL. */
function ownersLiteral(owners: string[]): string | string[] {
  let checked = ''
  for (const o of owners) {
    if (o === checked) continue
    if (!SAFE_OWNER.test(o)) return owners
    checked = o
  }
  return unquotedArrayLiteral(owners)
}
const SAFE_OWNER = /^[A-Za-z0-9_.:\-\/]+$/

/**
 * Of the given runs, those whose row is still theirs but locked by another transaction right now
 * (never waits: SKIP LOCKED). Used after a completion hit its lock timeout, to set those outcomes
 * aside and record the others; none found means the wait was on something else (a table or partition).
 */
export async function jobLockedAmong(db: Queryable, p: { schema: string; tenantIds: string[]; ids: string[]; owners: string[] }): Promise<Set<string>> {
  const s = quoteIdent(p.schema)
  const { rows } = await db.query<{ tenant_id: string; id: string }>(
    `with i as (
       select * from unnest($1::text[], $2::uuid[], $3::text[]) as i(tenant_id, id, owner)
     ),
     free as (
       select l.tenant_id, l.id from ${s}.jobs l join i on l.tenant_id = i.tenant_id and l.id = i.id and l.lease_owner = i.owner
          for update of l skip locked
     )
     select j.tenant_id, j.id from i join ${s}.jobs j on j.tenant_id = i.tenant_id and j.id = i.id and j.lease_owner = i.owner
      where not exists (select 1 from free f where f.tenant_id = j.tenant_id and f.id = j.id)`,
    [p.tenantIds, unquotedArrayLiteral(p.ids), p.owners],
  )
  return new Set(rows.map((r) => rowKey(r.tenant_id, r.id)))
}

/** One run's answer to a lease renewal. */
export interface LeaseState {
  /** The lease was made longer. False when another transaction held the row lock (skipped, not waited
   *  for): the lease is still this run's and is tried again at the next heartbeat. */
  renewed: boolean
  cancelRequested: boolean
}

/**
 * Renews the leases of runs, each matched by its exact owner, in one statement that never waits for a
 * row lock: rows are locked FOR UPDATE SKIP LOCKED, so a row held by this worker's own completion
 * (being deleted), by a tenant's open transaction (a push by key on a running job locks it) or by a
 * rescuer is skipped instead of stalling every other lease behind it. Never shortens a lease that
 * ctx.extendLease() made longer. Returns the runs whose row is still theirs (in the statement's
 * snapshot), keyed by rowKey(); a run missing from the answer has lost its lease.
 */
export async function jobRenewLeaseMany(
  db: Queryable,
  p: { schema: string; leaseMs: number; tenantIds: string[]; ids: string[]; owners: string[] },
): Promise<Map<string, LeaseState>> {
  const s = quoteIdent(p.schema)
  const { rows } = await db.query<{ tenant_id: string; id: string; cancel_requested: boolean; renewed: boolean }>(
    `with i as (
       select * from unnest($2::text[], $3::uuid[], $4::text[]) as i(tenant_id, id, owner)
     ),
     renewed as (
       update ${s}.jobs j
          set lease_expires_at = greatest(j.lease_expires_at, now() + $1 * interval '1 millisecond')
         from (select l.tenant_id, l.id from ${s}.jobs l join i on l.tenant_id = i.tenant_id and l.id = i.id and l.lease_owner = i.owner
                  for update of l skip locked) k
        where j.tenant_id = k.tenant_id and j.id = k.id
       returning j.tenant_id, j.id
     )
     select j.tenant_id, j.id, j.cancel_requested, (r.id is not null) as renewed
       from i join ${s}.jobs j on j.tenant_id = i.tenant_id and j.id = i.id and j.lease_owner = i.owner
       left join renewed r on r.tenant_id = j.tenant_id and r.id = j.id`,
    [p.leaseMs, p.tenantIds, unquotedArrayLiteral(p.ids), p.owners],
  )
  return new Map(rows.map((r) => [rowKey(r.tenant_id, r.id), { renewed: r.renewed, cancelRequested: r.cancel_requested }]))
}
