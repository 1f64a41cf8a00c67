-- Trace context (issue 21): the W3C carrier ({"traceparent": ..., "tracestate": ...}) of the span that
-- pushed a job, kept with the live job and copied to history, so the Worker's process span joins the
-- producer's trace (and a retry of a history entry can link to it). Null when the producer had no
-- OpenTelemetry SDK: then nothing else changes, not even the push statement.
--
-- How push_jobs_unchecked() gets it: the producer's push statement sets the transaction-local setting
-- pgqueue.trace_context inside an argument of push_jobs() (arguments are evaluated before the call), so
-- the push stays one statement and no function signature changes. push_jobs_unchecked() below is
-- 0018's (costs and rate limits, 0016's queue default) with the changes marked "[0020 trace context]"
-- (three places: read and clear the setting, the
-- insert's column, the upsert's column).

alter table :schema.jobs add column trace_context jsonb;
alter table :schema.job_history add column trace_context jsonb;

-- The user role reads jobs column by column (0012); this one is as harmless as the others.
grant select (trace_context) on :schema.jobs to :user_role;

create or replace function :schema.push_jobs_unchecked(
  p_tenant text, p_ids uuid[], p_queues text[], p_types text[], p_keys text[], p_payloads bytea[],
  p_payload_types text[], p_targets jsonb[], p_priorities integer[], p_run_ats timestamptz[],
  p_max_attempts integer[], p_retry_policies jsonb[], p_schedule_ids uuid[], p_retry_ofs uuid[],
  p_costs integer[] default null) -- 0018: p_costs added
returns table (id uuid, queue text, key text, state text, run_at timestamptz, created_at timestamptz, outcome text)
language plpgsql security definer set search_path = pg_catalog, pg_temp as $fn$
#variable_conflict use_column
declare
  v_current text := nullif(current_setting('pgqueue.tenant', true), '');
  v_limited text[]; -- 0018
  -- [0020 trace context] The pushing span's W3C carrier, set by the producer in the same statement
  -- (see the migration's header); read once and cleared, so a later push in the same transaction
  -- does not inherit it. Anyone may set the setting, so more than 1 kB (a traceparent and a
  -- tracestate at its W3C limit fit in 600 bytes) is ignored: it must not carry data past the
  -- payload limits.
  v_trace_text text := current_setting('pgqueue.trace_context', true);
  v_trace jsonb := case when octet_length(v_trace_text) between 1 and 1024 then v_trace_text::jsonb end;
begin
  if v_trace_text <> '' then perform set_config('pgqueue.trace_context', '', true); end if;
  if p_tenant is null or p_tenant = '' then
    raise exception 'pgqueue: a tenant is required' using errcode = '42501';
  end if;
  if v_current is not null and v_current <> p_tenant then
    raise exception 'pgqueue: transaction is scoped to another tenant' using errcode = '42501';
  end if;
  perform set_config('pgqueue.tenant', p_tenant, true);
  -- 0018: the pushed queues with a token bucket (the tenant's own or the queue's), read once per call:
  -- two primary-key range probes, nothing per job.
  select array_agg(rl.queue) into v_limited from :schema.rate_limits rl
   where rl.tenant_id in (p_tenant, '') and rl.queue = any(p_queues);

  return query
  with given as (
    -- 0018: p_costs is the last array (null or shorter: cost 1).
    select * from unnest(p_ids, p_queues, p_types, p_keys, p_payloads, p_payload_types, p_targets, p_priorities,
                         p_run_ats, p_max_attempts, p_retry_policies, p_schedule_ids, p_retry_ofs, coalesce(p_costs, '{}'))
           with ordinality as i(id, queue, type, key, payload, payload_type, target, priority, run_at,
                                max_attempts, retry_policy, schedule_id, retry_of, cost, ord)
  ),
  -- Keys held by a running job are left alone, and read without a lock: an upsert would lock the running
  -- row until this transaction ends (even when its WHERE refuses the update), and a producer's open
  -- transaction must not hold a row its worker needs.
  running as (
    select g.ord, j.id, j.queue, j.key, j.state, j.run_at, j.created_at
      from given g join :schema.jobs j on j.tenant_id = p_tenant and j.queue = g.queue and j.key = g.key
     where g.key is not null and j.state = 'running'
  ),
  input as (
    select i.ord, i.id, i.queue, i.type, i.key, i.payload, i.payload_type, i.target,
           coalesce(i.priority, 0) as priority, coalesce(i.run_at, now()) as run_at,
           coalesce(i.max_attempts, (qc.retry_policy->>'maxAttempts')::integer,
                    (qd.retry_policy->>'maxAttempts')::integer, 5) as max_attempts, i.retry_policy, i.schedule_id, i.retry_of,
           coalesce(i.cost, 1) as cost,
           case when coalesce(i.run_at, now()) > now() then 'scheduled'
                when qc.paused or qc.max_concurrency is not null then 'held'
                when fb.until > now() then 'held'
                -- 0018: a rate-limited pair's (or queue's) jobs wait in held; the Scheduler releases them
                -- as its token buckets allow (see rate_limits).
                when i.queue = any(v_limited) then 'held'
                else 'pending' end as state
      from given i
      left join :schema.queues qc on qc.tenant_id = p_tenant and qc.queue = i.queue
      left join :schema.fair_blocks fb on fb.tenant_id = p_tenant and fb.queue = i.queue
      left join :schema.queue_defaults qd on qd.queue = i.queue
     where i.ord not in (select running.ord from running)
  ),
  -- One clock advance per queue, in queue order (the sorted subquery fixes the call order).
  clocks as (
    select c.queue, c.n, :schema.fair_clock_advance(p_tenant, c.queue, c.n) as last_vt,
           :schema.fair_clock_stride(p_tenant, c.queue) as stride
      from (select input.queue, count(*) as n from input where input.state = 'pending'
             group by input.queue order by input.queue) c
  ),
  stamped as (
    select input.*,
           case when input.state = 'pending'
                then clocks.last_vt - (clocks.n
                     - row_number() over (partition by input.queue, input.state order by input.priority desc, input.ord)) * clocks.stride
           end as vt
      from input left join clocks on clocks.queue = input.queue
  ),
  ins as (
    insert into :schema.jobs as j (tenant_id, id, queue, type, key, state, priority, vt, run_at, payload,
                                   payload_type, target, max_attempts, retry_policy, schedule_id, retry_of, cost,
                                   trace_context) -- [0020 trace context]
    select p_tenant, s.id, s.queue, s.type, s.key, s.state, s.priority, s.vt, s.run_at, s.payload,
           s.payload_type, s.target, s.max_attempts, s.retry_policy, s.schedule_id, s.retry_of, s.cost,
           v_trace -- [0020 trace context]
      from stamped s order by s.ord
    on conflict (tenant_id, queue, key) where key is not null do update
       set type = excluded.type, state = excluded.state, priority = excluded.priority, vt = excluded.vt,
           run_at = excluded.run_at, payload = excluded.payload, payload_type = excluded.payload_type,
           target = excluded.target, max_attempts = excluded.max_attempts, retry_policy = excluded.retry_policy,
           schedule_id = excluded.schedule_id, retry_of = excluded.retry_of, cost = excluded.cost, attempt = 0, last_error = null,
           trace_context = excluded.trace_context, -- [0020 trace context]
           cancel_requested = false, lease_owner = null, lease_expires_at = null, started_at = null,
           updated_at = now()
     where j.state <> 'running'
    returning j.id, j.queue, j.key, j.state, j.run_at, j.created_at, (j.xmax = 0) as created
  )
  select ins.id, ins.queue, ins.key, ins.state, ins.run_at, ins.created_at,
         case when ins.created then 'created' else 'replaced' end
    from ins
  union all
  select r.id, r.queue, r.key, r.state, r.run_at, r.created_at, 'running' from running r;

  -- Wake idle workers. Empty payload: any role may LISTEN, so it must name no tenant, key or job.
  -- Several pushes in one transaction collapse into one notification.
  if exists (select 1 from unnest(p_run_ats) r where r is null or r <= now()) then
    perform pg_notify(:schema_channel, '');
  end if;
end
$fn$;

-- job_remove() as in 0019, keeping a cancelled waiting job's trace context in history like every other
-- writer of history. Same signature, so its grants stand.
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
                                     worker_id, created_at, run_at, started_at, finished_at, flow_id, trace_context)
    select r.tenant_id, r.id, r.queue, r.type, r.key, 'cancelled', r.priority, r.payload, r.payload_type, r.target,
           null, null,
           jsonb_build_object('message', 'job cancelled before it ran', 'name', 'JobAbortedError', 'code', 'CANCELLED',
                              'at', to_char(now() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')),
           r.attempt, r.max_attempts, r.schedule_id, r.retry_of,
           null, r.created_at, r.run_at, r.started_at, now(), r.flow_id, r.trace_context
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

-- push_flow_unchecked() as in 0019, storing the flow() call's trace context with every job it creates
-- (the same setting, read and cleared the same way). Same signature, so its grants stand.
create or replace function :schema.push_flow_unchecked(
  p_tenant text, p_flow_id uuid, p_ids uuid[], p_refs text[], p_queues text[], p_types text[], p_payloads bytea[],
  p_payload_types text[], p_targets jsonb[], p_priorities integer[], p_run_ats timestamptz[], p_max_attempts integer[],
  p_retry_policies jsonb[], p_run_on_parent_failure boolean[], p_edge_child uuid[], p_edge_parent uuid[],
  p_allow_existing boolean)
returns table (id uuid, ref text, state text)
language plpgsql security definer set search_path = pg_catalog, pg_temp as $fn$
#variable_conflict use_column
declare
  v_current text := nullif(current_setting('pgqueue.tenant', true), '');
  -- [0020 trace context] As in push_jobs_unchecked(): the flow() call's span, read once and cleared.
  v_trace_text text := current_setting('pgqueue.trace_context', true);
  v_trace jsonb := case when octet_length(v_trace_text) between 1 and 1024 then v_trace_text::jsonb end;
  v_existing uuid[];
  v_ex_states text[];
  v_roots uuid[];
begin
  if v_trace_text <> '' then perform set_config('pgqueue.trace_context', '', true); end if;
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
                                   target, max_attempts, retry_policy, flow_id,
                                   trace_context) -- [0020 trace context]
    select p_tenant, g.id, g.queue, g.type, null, 'waiting', coalesce(g.priority, 0), null, coalesce(g.run_at, now()),
           g.payload, g.payload_type, g.target,
           coalesce(g.max_attempts, (qc.retry_policy->>'maxAttempts')::integer,
                    (qd.retry_policy->>'maxAttempts')::integer, 5), g.retry_policy, p_flow_id,
           v_trace -- [0020 trace context]
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
