-- Flows (issue 20): jobs that wait for other jobs (DAGs, fan-out/fan-in), released in the transaction
-- that records their last parent's outcome, with no polling resolver.
--
-- - jobs.state 'waiting': a flow job with unfinished parents. No claim, promotion or release of the
--   Scheduler reads that state, so a waiting job is never claimable and costs those paths nothing.
-- - jobs.flow_id, job_history.flow_id: the flow a job belongs to (null for every other job). The
--   Worker's completion and the lease rescue call flow_parents_done() only for finished rows whose
--   flow_id is set, so a job outside any flow pays one null check in SQL and no query.
-- - flow_nodes: one row per flow job, kept after it finishes: its ref, how many parents it still
--   waits for, what it does when a parent fails, and once finished its outcome and result. Parents'
--   results are read from here (ctx.parents()), not from job_history, whose completed rows a queue may
--   choose not to keep and which is partitioned by finish time (a lookup by id visits every partition).
--   A node's row is also the lock that orders every transition of that job inside a flow: two parents
--   finishing at once decrement parents_left one after the other, and exactly one sees it reach 0.
-- - flow_edges: parent -> child, looked up by parent (release) and by child (ctx.parents()).
--
-- Writes go only through SECURITY DEFINER functions: push_flow() (user role, signed like push_jobs),
-- push_flow() without a token (worker role: a running job adding to its own flow), flow_cancel(),
-- flow_parents_done() (worker role: completion and rescue) and job_remove(), redefined here so a
-- cancel cascades. The release stamps fair virtual times like a push (fair_clock_try_advance(): a clock
-- another transaction holds is never waited for; the job then goes to scheduled, due now, and the
-- Scheduler stamps it on its next round).
--
-- push_jobs_unchecked() is not changed. flow_release() repeats its choice of state (scheduled / held
-- for pause, cap, back-off or rate limit / pending) and push_flow_unchecked() its default of max_attempts (the
-- job's, the tenant's queue policy, the operator's default of 0016, 5); a change there belongs here too.
-- job_remove() is 0016's with flow_id in its history insert and the flowed part added.

alter table :schema.jobs drop constraint jobs_state_check,
  add constraint jobs_state_check check (state in ('scheduled', 'pending', 'held', 'running', 'waiting'));
alter table :schema.jobs add column flow_id uuid;
alter table :schema.job_history add column flow_id uuid;
grant select (flow_id) on :schema.jobs to :user_role;

create table :schema.flow_nodes (
  tenant_id text collate "C" not null,
  id uuid not null,
  flow_id uuid not null,
  ref text collate "C" not null,
  queue text collate "C" not null,
  type text collate "C" not null,
  parents_left integer not null default 0,
  -- true: the job runs when its parents have finished, whatever their outcome (runOnParentFailure).
  run_on_parent_failure boolean not null default false,
  state text collate "C" not null,
  result bytea,
  result_type text,
  error jsonb,
  created_at timestamptz not null default now(),
  finished_at timestamptz,
  primary key (tenant_id, id),
  constraint flow_nodes_state_check check (state in ('waiting', 'live', 'completed', 'failed', 'cancelled')),
  constraint flow_nodes_tenant_id_bytes check (octet_length(tenant_id) between 1 and 256),
  constraint flow_nodes_ref_bytes check (octet_length(ref) between 1 and 128),
  constraint flow_nodes_parents_left_range check (parents_left >= 0)
);
create index flow_nodes_flow_idx on :schema.flow_nodes (tenant_id, flow_id);

create table :schema.flow_edges (
  tenant_id text collate "C" not null,
  parent_id uuid not null,
  child_id uuid not null,
  primary key (tenant_id, parent_id, child_id)
);
create index flow_edges_child_idx on :schema.flow_edges (tenant_id, child_id);

alter table :schema.flow_nodes enable row level security;
alter table :schema.flow_edges enable row level security;
create policy flow_nodes_tenant on :schema.flow_nodes to :user_role
  using (tenant_id = (select :schema.current_tenant())) with check (tenant_id = (select :schema.current_tenant()));
create policy flow_edges_tenant on :schema.flow_edges to :user_role
  using (tenant_id = (select :schema.current_tenant())) with check (tenant_id = (select :schema.current_tenant()));
create policy flow_nodes_worker on :schema.flow_nodes to :worker_role using (true) with check (true);
create policy flow_edges_worker on :schema.flow_edges to :worker_role using (true) with check (true);
-- Reads only: every write goes through the functions below.
grant select on :schema.flow_nodes, :schema.flow_edges to :worker_role, :user_role;
alter table :schema.flow_nodes alter column tenant_id set statistics 0;
alter table :schema.flow_edges alter column tenant_id set statistics 0;

-- Releases waiting jobs of one tenant whose parents are all done: the same state a push would give
-- them (scheduled when run_at is ahead; held when the queue is paused, capped or backed off; else
-- pending with a fair virtual time from the tenant's clock, in queue order). A clock held by another
-- transaction is not waited for: those jobs go to scheduled, due now, and the Scheduler stamps them.
-- Internal: called by the functions below (owner's rights), granted to nobody.
create function :schema.flow_release(p_tenant text, p_ids uuid[]) returns integer
language plpgsql security definer set search_path = pg_catalog, pg_temp as $fn$
declare
  v_ids uuid[];
  v_queues text[];
  v_states text[];
  v_vts bigint[];
  q record;
  v_last bigint;
  v_stride bigint;
  v_k integer;
  v_pending integer := 0;
begin
  if p_ids is null or cardinality(p_ids) = 0 then
    return 0;
  end if;
  -- The jobs by primary key, one probe each (a LATERAL with LIMIT is never turned into a scan of the
  -- tenant's rows, whatever the planner guesses about fresh or unanalyzed tables), in stamping order.
  -- The state is checked outside: inside, (state, tenant_id) would match jobs_state_idx as well as the
  -- key, and that index walks every waiting job of the tenant.
  select array_agg(x.id order by x.queue, x.priority desc, x.id), array_agg(x.queue order by x.queue, x.priority desc, x.id),
         array_agg(x.state order by x.queue, x.priority desc, x.id)
    into v_ids, v_queues, v_states
    from (select distinct u.id from unnest(p_ids) u(id)) u
   cross join lateral (
     select j.id, j.queue, j.priority, j.state as current,
            case when j.run_at > now() then 'scheduled'
                 when exists (select 1 from :schema.queues qc where qc.tenant_id = p_tenant and qc.queue = j.queue
                                 and (qc.paused or qc.max_concurrency is not null)) then 'held'
                 when exists (select 1 from :schema.fair_blocks fb where fb.tenant_id = p_tenant and fb.queue = j.queue
                                 and fb.until > now()) then 'held'
                 -- A rate-limited pair's (or queue's) jobs wait in held for the Scheduler's release (0018).
                 when exists (select 1 from :schema.rate_limits rl where rl.tenant_id in (p_tenant, '')
                                 and rl.queue = j.queue) then 'held'
                 else 'pending' end as state
       from :schema.jobs j
      where j.tenant_id = p_tenant and j.id = u.id
      limit 1) x
   where x.current = 'waiting';
  if v_ids is null then
    return 0;
  end if;
  v_vts := array_fill(null::bigint, array[cardinality(v_ids)]);
  -- One clock advance per queue, in queue order; the n pending jobs of a queue take the n values one
  -- stride apart ending at the clock's new value.
  for q in select t.queue, count(*) as n from unnest(v_queues, v_states) as t(queue, state)
            where t.state = 'pending' group by t.queue order by t.queue loop
    v_last := :schema.fair_clock_try_advance(p_tenant, q.queue, q.n);
    v_stride := :schema.fair_clock_stride(p_tenant, q.queue);
    v_k := 0;
    for i in 1..cardinality(v_ids) loop
      if v_queues[i] = q.queue and v_states[i] = 'pending' then
        v_k := v_k + 1;
        if v_last is null then
          v_states[i] := 'scheduled';
        else
          v_vts[i] := v_last - (q.n - v_k) * v_stride;
        end if;
      end if;
    end loop;
  end loop;
  for i in 1..cardinality(v_ids) loop
    update :schema.jobs j set state = v_states[i], vt = v_vts[i], run_at = greatest(j.run_at, now()), updated_at = now()
     where j.tenant_id = p_tenant and j.id = v_ids[i];
    if v_states[i] = 'pending' then
      v_pending := v_pending + 1;
    end if;
  end loop;
  -- Wake idle workers (and the Scheduler, for jobs left scheduled): empty payload, as push_jobs().
  if v_pending > 0 then
    perform pg_notify(:schema_channel, '');
  end if;
  return v_pending;
end
$fn$;
revoke all on function :schema.flow_release(text, uuid[]) from public;

-- Records the outcome of finished flow jobs (completed, failed or cancelled; every job passed must have
-- left the live table in the calling transaction) and settles their children: a child waiting on a
-- parent that did not complete is cancelled (history, error code PARENT_FAILED) unless it runs on
-- parent failure, and its own waiting descendants with it; a child whose last parent finished is
-- released. Each child's flow_nodes row is locked (in id order) before it changes, so concurrent
-- parents of one child settle it one after the other and release it exactly once.
-- Called in the same statement as the completion (Worker), the lease rescue, job_remove() and
-- flow_cancel(), so a parent's outcome and its children's release commit together.
create function :schema.flow_parents_done(p_tenants text[], p_ids uuid[], p_states text[], p_results bytea[],
                                          p_result_types text[], p_errors jsonb[]) returns integer
language plpgsql security definer set search_path = pg_catalog, pg_temp as $fn$
declare
  f record;
  v_tenant text;
  v_done uuid[];
  v_failed uuid[];
  v_kids uuid[];
  v_ok bigint[];
  v_bad bigint[];
  v_state text;
  v_error jsonb;
  v_release uuid[];
  v_cancel uuid[];
  v_released integer := 0;
begin
  -- Every write below is by primary key, one row per statement, so no plan can turn into a scan of a
  -- tenant's rows; rows are locked in (tenant, id) order, as every other locker of flow nodes takes
  -- them (a running job attaching children to them locks them FOR SHARE in that order).
  for f in select * from unnest(p_tenants, p_ids, p_states, p_results, p_result_types, p_errors)
                     as i(tenant_id, id, state, result, result_type, error)
            order by 1, 2 loop
    update :schema.flow_nodes n
       set state = f.state, result = f.result, result_type = f.result_type, error = f.error, finished_at = now()
     where n.tenant_id = f.tenant_id and n.id = f.id and n.state in ('waiting', 'live');
  end loop;

  -- Tenants in order, so two settling transactions take clocks in the same order.
  for v_tenant in select distinct t from unnest(p_tenants) t order by 1 loop
    select coalesce(array_agg(i.id) filter (where i.state = 'completed'), '{}'),
           coalesce(array_agg(i.id) filter (where i.state <> 'completed'), '{}')
      into v_done, v_failed
      from unnest(p_tenants, p_ids, p_states) as i(tenant_id, id, state)
     where i.tenant_id = v_tenant;
    while cardinality(v_done) + cardinality(v_failed) > 0 loop
      -- Children of the finished parents, with how many of their parents completed and failed: the
      -- edges of each parent by the primary key's prefix (OFFSET 0 keeps the LATERAL a probe per parent).
      select coalesce(array_agg(c.child_id order by c.child_id), '{}'), array_agg(c.ok order by c.child_id), array_agg(c.bad order by c.child_id)
        into v_kids, v_ok, v_bad
        from (select e.child_id, count(*) filter (where not b.bad) as ok, count(*) filter (where b.bad) as bad
                from (select d.id, false as bad from unnest(v_done) d(id) union all select d.id, true from unnest(v_failed) d(id)) b
               cross join lateral (select e.child_id from :schema.flow_edges e
                                    where e.tenant_id = v_tenant and e.parent_id = b.id offset 0) e
               group by e.child_id) c;
      v_release := '{}';
      v_cancel := '{}';
      v_error := jsonb_build_object('message', 'a parent job failed or was cancelled', 'name', 'ParentFailedError',
                                    'code', 'PARENT_FAILED', 'at', to_char(now() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'));
      for i in 1..cardinality(v_kids) loop
        update :schema.flow_nodes n
           set parents_left = greatest(0, n.parents_left - (v_ok[i] + v_bad[i])::integer),
               state = case when v_bad[i] > 0 and not n.run_on_parent_failure then 'cancelled'
                            when n.parents_left - (v_ok[i] + v_bad[i]) <= 0 then 'live'
                            else 'waiting' end,
               finished_at = case when v_bad[i] > 0 and not n.run_on_parent_failure then now() end,
               error = case when v_bad[i] > 0 and not n.run_on_parent_failure then v_error end
         where n.tenant_id = v_tenant and n.id = v_kids[i] and n.state = 'waiting'
        returning n.state into v_state;
        if v_state = 'live' then
          v_release := v_release || v_kids[i];
        elsif v_state = 'cancelled' then
          v_cancel := v_cancel || v_kids[i];
          with gone as (
            -- `|| ''` keeps jobs_state_idx out of the plan: the key finds the row.
            delete from :schema.jobs j where j.tenant_id = v_tenant and j.id = v_kids[i] and j.state || '' = 'waiting'
            returning j.*
          )
          insert into :schema.job_history (tenant_id, id, queue, type, key, state, priority, payload, payload_type, target,
                                           attempt, max_attempts, schedule_id, retry_of, created_at, run_at, started_at,
                                           error, flow_id, finished_at)
          select g.tenant_id, g.id, g.queue, g.type, g.key, 'cancelled', g.priority, g.payload, g.payload_type, g.target,
                 g.attempt, g.max_attempts, g.schedule_id, g.retry_of, g.created_at, g.run_at, g.started_at,
                 v_error, g.flow_id, now()
            from gone g;
        end if;
        v_state := null;
      end loop;
      v_released := v_released + :schema.flow_release(v_tenant, v_release);
      -- The cancelled children are parents that did not complete, for their own children.
      v_done := '{}';
      v_failed := v_cancel;
    end loop;
  end loop;
  return v_released;
end
$fn$;
revoke all on function :schema.flow_parents_done(text[], uuid[], text[], bytea[], text[], jsonb[]) from public;
grant execute on function :schema.flow_parents_done(text[], uuid[], text[], bytea[], text[], jsonb[]) to :worker_role;

-- Creates flow jobs for one tenant: every node as a waiting job plus its flow_nodes row, the edges, and
-- the release of the nodes with no unfinished parent, all in this transaction. p_edge_child and
-- p_edge_parent are parallel arrays of job ids. Nodes come in topological order (a parent of this call
-- before its children), which the database checks instead of searching for cycles. A parent that is
-- not a node of this call must be a node of the same tenant and flow, and only p_allow_existing (the
-- worker role, for a running job adding to its own flow) allows one; its row is locked FOR SHARE, so it
-- cannot finish unnoticed while the child is attached. Nodes have no key: a push by key could replace
-- a waiting job and drop it out of its flow.
create function :schema.push_flow_unchecked(
  p_tenant text, p_flow_id uuid, p_ids uuid[], p_refs text[], p_queues text[], p_types text[], p_payloads bytea[],
  p_payload_types text[], p_targets jsonb[], p_priorities integer[], p_run_ats timestamptz[], p_max_attempts integer[],
  p_retry_policies jsonb[], p_run_on_parent_failure boolean[], p_edge_child uuid[], p_edge_parent uuid[],
  p_allow_existing boolean)
returns table (id uuid, ref text, state text)
language plpgsql security definer set search_path = pg_catalog, pg_temp as $fn$
#variable_conflict use_column
declare
  v_current text := nullif(current_setting('pgqueue.tenant', true), '');
  v_existing uuid[];
  v_ex_states text[];
  v_roots uuid[];
begin
  if p_tenant is null or p_tenant = '' then
    raise exception 'pgqueue: a tenant is required' using errcode = '42501';
  end if;
  if v_current is not null and v_current <> p_tenant then
    raise exception 'pgqueue: transaction is scoped to another tenant' using errcode = '42501';
  end if;
  perform set_config('pgqueue.tenant', p_tenant, true);
  if p_flow_id is null or cardinality(p_ids) = 0 or cardinality(p_ids) > 1000 or cardinality(p_edge_child) > 100000
     or cardinality(p_edge_child) <> cardinality(p_edge_parent) then
    raise exception 'pgqueue: a flow call takes 1 to 1000 nodes' using errcode = '22023';
  end if;
  -- Membership tests are hashed joins on unnest(p_ids), not `= any(array)`, and counts rather than
  -- EXISTS (planned for its first row, that is nested loops): a fan-in of 1,000 edges over 1,000 nodes
  -- would otherwise compare a million pairs per test.
  if (select count(*) from unnest(p_edge_child) c(id) left join unnest(p_ids) i(id) on i.id = c.id where i.id is null) > 0 then
    raise exception 'pgqueue: an edge names a child that is not a node of this call' using errcode = '22023';
  end if;
  -- Parents of this call must come before their children.
  if (select count(*) from unnest(p_edge_child, p_edge_parent) as e(child, parent)
        join unnest(p_ids) with ordinality as pc(id, ord) on pc.id = e.child
        join unnest(p_ids) with ordinality as pp(id, ord) on pp.id = e.parent
       where pp.ord >= pc.ord) > 0 then
    raise exception 'pgqueue: flow nodes must be in dependency order (a cycle?)' using errcode = '22023';
  end if;
  select coalesce(array_agg(distinct e.parent), '{}') into v_existing
    from unnest(p_edge_parent) e(parent) left join unnest(p_ids) i(id) on i.id = e.parent where i.id is null;
  if cardinality(v_existing) > 0 then
    if not coalesce(p_allow_existing, false) then
      raise exception 'pgqueue: a parent is not a node of this flow call' using errcode = '22023';
    end if;
    -- By primary key, in id order (array_agg(distinct) sorts), locked FOR SHARE.
    select array_agg(x.id order by x.id), array_agg(x.state order by x.id) into v_existing, v_ex_states
      from unnest(v_existing) u(id)
     cross join lateral (select n.id, n.state from :schema.flow_nodes n
                          where n.tenant_id = p_tenant and n.id = u.id and n.flow_id = p_flow_id
                          limit 1 for share) x;
    if coalesce(cardinality(v_existing), 0) <> (select count(distinct e.parent) from unnest(p_edge_parent) e(parent)
                                                  left join unnest(p_ids) i(id) on i.id = e.parent where i.id is null) then
      raise exception 'pgqueue: a parent is not a job of this tenant''s flow' using errcode = '22023';
    end if;
  end if;

  with given as (
    select * from unnest(p_ids, p_refs, p_queues, p_types, p_payloads, p_payload_types, p_targets, p_priorities,
                         p_run_ats, p_max_attempts, p_retry_policies, p_run_on_parent_failure)
           with ordinality as g(id, ref, queue, type, payload, payload_type, target, priority, run_at, max_attempts,
                                retry_policy, run_on_parent_failure, ord)
  ),
  waits as (
    -- Unfinished parents per child: those of this call, and existing ones still waiting or live. An
    -- existing parent that already failed counts as finished; the child then starts (run on failure)
    -- or is refused below.
    select e.child, count(*) filter (where i.id is not null or x.state in ('waiting', 'live')) as n,
           bool_or(x.state in ('failed', 'cancelled')) as parent_failed
      from unnest(p_edge_child, p_edge_parent) as e(child, parent)
      left join unnest(p_ids) as i(id) on i.id = e.parent
      left join unnest(v_existing, v_ex_states) as x(id, state) on x.id = e.parent
     group by e.child
  ),
  nodes as (
    insert into :schema.flow_nodes (tenant_id, id, flow_id, ref, queue, type, parents_left, run_on_parent_failure, state)
    select p_tenant, g.id, p_flow_id, g.ref, g.queue, g.type, coalesce(w.n, 0), coalesce(g.run_on_parent_failure, false),
           case when coalesce(w.n, 0) = 0 then 'live' else 'waiting' end
      from given g left join waits w on w.child = g.id
     where case when w.parent_failed and not coalesce(g.run_on_parent_failure, false)
                then :schema.flow_raise('pgqueue: a parent of this node already failed or was cancelled') else true end
     order by g.ord
    returning 1
  ),
  jobs_in as (
    insert into :schema.jobs as j (tenant_id, id, queue, type, key, state, priority, vt, run_at, payload, payload_type,
                                   target, max_attempts, retry_policy, flow_id)
    select p_tenant, g.id, g.queue, g.type, null, 'waiting', coalesce(g.priority, 0), null, coalesce(g.run_at, now()),
           g.payload, g.payload_type, g.target,
           coalesce(g.max_attempts, (qc.retry_policy->>'maxAttempts')::integer,
                    (qd.retry_policy->>'maxAttempts')::integer, 5), g.retry_policy, p_flow_id
      from given g
      left join :schema.queues qc on qc.tenant_id = p_tenant and qc.queue = g.queue
      left join :schema.queue_defaults qd on qd.queue = g.queue
     order by g.ord
    returning 1
  ),
  edges as (
    insert into :schema.flow_edges (tenant_id, parent_id, child_id)
    select distinct p_tenant, e.parent, e.child from unnest(p_edge_child, p_edge_parent) as e(child, parent)
    returning 1
  )
  select coalesce(array_agg(g.id), '{}') into v_roots
    from given g left join waits w on w.child = g.id
   where coalesce(w.n, 0) = 0
     and (select count(*) from nodes) + (select count(*) from jobs_in) + (select count(*) from edges) >= 0;

  perform :schema.flow_release(p_tenant, v_roots);
  return query
  select u.id, u.ref, x.state from unnest(p_ids, p_refs) as u(id, ref)
   cross join lateral (select j.state from :schema.jobs j where j.tenant_id = p_tenant and j.id = u.id limit 1) x;
end
$fn$;
revoke all on function :schema.push_flow_unchecked(text, uuid, uuid[], text[], text[], text[], bytea[], text[], jsonb[],
  integer[], timestamptz[], integer[], jsonb[], boolean[], uuid[], uuid[], boolean) from public;

-- Raises a validation error from inside a query (push_flow_unchecked's refusal of a failed parent).
create function :schema.flow_raise(p_message text) returns boolean
language plpgsql volatile set search_path = pg_catalog, pg_temp as $fn$
begin
  raise exception '%', p_message using errcode = '22023';
end
$fn$;
revoke all on function :schema.flow_raise(text) from public;

-- The user role's flow: signs the transaction in as p_tenant with p_token (one round trip, as push_jobs)
-- and creates the flow. Only nodes of this call may be parents.
create function :schema.push_flow(
  p_tenant text, p_token text, p_flow_id uuid, p_ids uuid[], p_refs text[], p_queues text[], p_types text[],
  p_payloads bytea[], p_payload_types text[], p_targets jsonb[], p_priorities integer[], p_run_ats timestamptz[],
  p_max_attempts integer[], p_retry_policies jsonb[], p_run_on_parent_failure boolean[], p_edge_child uuid[],
  p_edge_parent uuid[])
returns table (id uuid, ref text, state text)
language plpgsql security definer set search_path = pg_catalog, pg_temp as $fn$
declare
  v_current text := nullif(current_setting('pgqueue.tenant', true), '');
begin
  if p_tenant is null or p_tenant = '' then
    raise exception 'pgqueue: a tenant is required' using errcode = '42501';
  end if;
  if v_current is not null and v_current <> p_tenant then
    raise exception 'pgqueue: transaction is scoped to another tenant' using errcode = '42501';
  end if;
  perform set_config('pgqueue.tenant', p_tenant, true);
  perform set_config('pgqueue.tenant_token', coalesce(p_token, ''), true);
  perform :schema.current_tenant();
  return query select * from :schema.push_flow_unchecked(p_tenant, p_flow_id, p_ids, p_refs, p_queues, p_types, p_payloads,
    p_payload_types, p_targets, p_priorities, p_run_ats, p_max_attempts, p_retry_policies, p_run_on_parent_failure,
    p_edge_child, p_edge_parent, false);
end
$fn$;
revoke all on function :schema.push_flow(text, text, uuid, uuid[], text[], text[], text[], bytea[], text[], jsonb[],
  integer[], timestamptz[], integer[], jsonb[], boolean[], uuid[], uuid[]) from public;
grant execute on function :schema.push_flow(text, text, uuid, uuid[], text[], text[], text[], bytea[], text[], jsonb[],
  integer[], timestamptz[], integer[], jsonb[], boolean[], uuid[], uuid[]) to :user_role;

-- The worker role's flow push (a running job adding to its own flow): existing nodes of the flow may be
-- parents. Checks its caller as the worker role's push_jobs does.
create function :schema.push_flow(
  p_tenant text, p_flow_id uuid, p_ids uuid[], p_refs text[], p_queues text[], p_types text[],
  p_payloads bytea[], p_payload_types text[], p_targets jsonb[], p_priorities integer[], p_run_ats timestamptz[],
  p_max_attempts integer[], p_retry_policies jsonb[], p_run_on_parent_failure boolean[], p_edge_child uuid[],
  p_edge_parent uuid[])
returns table (id uuid, ref text, state text)
language plpgsql security definer set search_path = pg_catalog, pg_temp as $fn$
begin
  perform :schema.require_tenant(p_tenant);
  return query select * from :schema.push_flow_unchecked(p_tenant, p_flow_id, p_ids, p_refs, p_queues, p_types, p_payloads,
    p_payload_types, p_targets, p_priorities, p_run_ats, p_max_attempts, p_retry_policies, p_run_on_parent_failure,
    p_edge_child, p_edge_parent, true);
end
$fn$;
revoke all on function :schema.push_flow(text, uuid, uuid[], text[], text[], text[], bytea[], text[], jsonb[],
  integer[], timestamptz[], integer[], jsonb[], boolean[], uuid[], uuid[]) from public;
grant execute on function :schema.push_flow(text, uuid, uuid[], text[], text[], text[], bytea[], text[], jsonb[],
  integer[], timestamptz[], integer[], jsonb[], boolean[], uuid[], uuid[]) to :worker_role;

-- Adopts a running job that is in no flow as the first node of a new flow (ref 'root'), so its handler
-- can add children; returns the job's flow id (the existing one when it already has a flow). Worker role.
create function :schema.flow_adopt(p_tenant text, p_id uuid, p_flow_id uuid) returns uuid
language plpgsql security definer set search_path = pg_catalog, pg_temp as $fn$
declare
  v_flow uuid;
  v_state text;
begin
  perform :schema.require_tenant(p_tenant);
  select j.flow_id, j.state into v_flow, v_state from :schema.jobs j where j.tenant_id = p_tenant and j.id = p_id for update;
  if v_state is null then
    raise exception 'pgqueue: job % is not live', p_id using errcode = '22023';
  end if;
  if v_flow is not null then
    return v_flow;
  end if;
  update :schema.jobs set flow_id = p_flow_id where tenant_id = p_tenant and id = p_id;
  insert into :schema.flow_nodes (tenant_id, id, flow_id, ref, queue, type, parents_left, state)
  select j.tenant_id, j.id, p_flow_id, 'root', j.queue, j.type, 0, 'live' from :schema.jobs j
   where j.tenant_id = p_tenant and j.id = p_id;
  return p_flow_id;
end
$fn$;
revoke all on function :schema.flow_adopt(text, uuid, uuid) from public;
grant execute on function :schema.flow_adopt(text, uuid, uuid) to :worker_role;

-- Cancels a flow of the signed-in tenant: every waiting, scheduled, pending or held job moves to history
-- as cancelled, and every running one is flagged (its worker aborts it; its waiting children are
-- already cancelled). Returns how many were cancelled and flagged.
create function :schema.flow_cancel(p_tenant text, p_flow_id uuid) returns table (cancelled integer, flagged integer)
language plpgsql security definer set search_path = pg_catalog, pg_temp as $fn$
#variable_conflict use_column
declare
  v_nodes uuid[];
  v_id uuid;
  v_ids uuid[] := '{}';
  v_flagged integer := 0;
  v_n integer;
  v_error jsonb := jsonb_build_object('message', 'the flow was cancelled', 'name', 'FlowCancelledError', 'code', 'FLOW_CANCELLED',
                                      'at', to_char(now() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'));
begin
  perform :schema.require_tenant(p_tenant);
  -- The flow's unfinished nodes (flow_nodes_flow_idx); every job write below is by primary key.
  select coalesce(array_agg(n.id order by n.id), '{}') into v_nodes from :schema.flow_nodes n
   where n.tenant_id = p_tenant and n.flow_id = p_flow_id and n.state in ('waiting', 'live');
  -- Running jobs first: a completion holding one of their rows locks flow nodes after it, so flagging
  -- them before taking any node lock cannot deadlock with it.
  foreach v_id in array v_nodes loop
    update :schema.jobs j set cancel_requested = true, updated_at = now()
     where j.tenant_id = p_tenant and j.id = v_id and j.state || '' = 'running';
    get diagnostics v_n = row_count;
    v_flagged := v_flagged + v_n;
  end loop;
  -- Then the nodes, in id order like flow_parents_done(), so a completing parent and this cancel settle
  -- a child one after the other (a child this cancel removed is skipped there).
  perform 1 from unnest(v_nodes) u(id)
    cross join lateral (select 1 from :schema.flow_nodes n where n.tenant_id = p_tenant and n.id = u.id
                         and n.state in ('waiting', 'live') limit 1 for update) x;
  foreach v_id in array v_nodes loop
    with removed as (
      delete from :schema.jobs j
       where j.tenant_id = p_tenant and j.id = v_id and j.state <> 'running'
      returning j.*
    ), archived as (
      insert into :schema.job_history (tenant_id, id, queue, type, key, state, priority, payload, payload_type, target,
                                       attempt, max_attempts, schedule_id, retry_of, created_at, run_at, started_at,
                                       error, flow_id, finished_at)
      select r.tenant_id, r.id, r.queue, r.type, r.key, 'cancelled', r.priority, r.payload, r.payload_type, r.target,
             r.attempt, r.max_attempts, r.schedule_id, r.retry_of, r.created_at, r.run_at, r.started_at,
             v_error, r.flow_id, now()
        from removed r
      returning 1
    )
    select count(*) into v_n from archived;
    if v_n > 0 then
      v_ids := v_ids || v_id;
      update :schema.flow_nodes n set state = 'cancelled', error = v_error, finished_at = now()
       where n.tenant_id = p_tenant and n.id = v_id;
    end if;
  end loop;
  return query select cardinality(v_ids), v_flagged;
end
$fn$;
revoke all on function :schema.flow_cancel(text, uuid) from public;
grant execute on function :schema.flow_cancel(text, uuid) to :user_role, :worker_role;

-- job_remove (0012) with flow jobs: flow_id goes to history, and a removed flow job settles its flow
-- (its waiting descendants are cancelled, or run when they run on parent failure).
create or replace function :schema.job_remove(p_tenant text, p_id uuid, p_queue text, p_key text, p_archive boolean)
returns table (id uuid, action text)
language plpgsql security definer set search_path = pg_catalog, pg_temp as $fn$
#variable_conflict use_column
begin
  perform :schema.require_tenant(p_tenant);
  return query
  with target as (
    select j.tenant_id, j.id from :schema.jobs j
     where j.tenant_id = p_tenant
       and (case when p_id is not null then j.id = p_id else j.queue = p_queue and j.key = p_key end)
  ), removed as (
    delete from :schema.jobs j using target t
     where j.tenant_id = t.tenant_id and j.id = t.id and j.state <> 'running'
    returning j.*
  ), archived as (
    insert into :schema.job_history (tenant_id, id, queue, type, key, state, priority, payload, payload_type, target,
                                     result, result_type, error, attempt, max_attempts, schedule_id, retry_of,
                                     worker_id, created_at, run_at, started_at, finished_at, flow_id)
    select r.tenant_id, r.id, r.queue, r.type, r.key, 'cancelled', r.priority, r.payload, r.payload_type, r.target,
           null, null,
           jsonb_build_object('message', 'job cancelled before it ran', 'name', 'JobAbortedError', 'code', 'CANCELLED',
                              'at', to_char(now() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')),
           r.attempt, r.max_attempts, r.schedule_id, r.retry_of,
           null, r.created_at, r.run_at, r.started_at, now(), r.flow_id
      from removed r where p_archive
    returning 1
  ), flagged as (
    update :schema.jobs j set cancel_requested = true, updated_at = now()
      from target t
     where j.tenant_id = t.tenant_id and j.id = t.id and j.state = 'running'
    returning j.id
  ), flowed as (
    select :schema.flow_parents_done(array_agg(r.tenant_id), array_agg(r.id), array_agg('cancelled'::text),
                                     null, null, null) as released
      from removed r where r.flow_id is not null
    having count(*) > 0
  )
  select r.id, case when p_archive then 'cancelled' else 'deleted' end from removed r
   where (select count(*) from flowed) >= 0
  union all
  select f.id, 'flagged' from flagged f;
end
$fn$;
