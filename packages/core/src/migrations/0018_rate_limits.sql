-- Rate limits (issue 18): token buckets per (tenant, queue) and per queue, set by the operator.
--
-- A limited pair's jobs wait in held (like a capped pair's) and the Scheduler's releaser moves them into
-- the fair order as the buckets allow, taking the tokens in the same transaction. The Worker's claim is
-- not changed at all, so a queue without limits costs what it cost before; the push and the promotion
-- of due jobs read rate_limits by primary key to send a limited pair's jobs to held.
--
-- Why at release and not at claim: a claim would have to step over a dry tenant's pending backlog in
-- jobs_claim_idx (queue, vt) on every call, while held jobs are out of the claim's index altogether.
-- Why the bound holds with any number of Schedulers and Workers: think of the bucket as spent at claim
-- time, B = tokens + the cost released and not yet claimed. A bucket row is locked (FOR UPDATE, in key
-- order) by every release that takes from it. Each release stores `unclaimed`, the bucket's pending
-- cost right after it; the next refill is capped at capacity minus that stored value, which is what B
-- would allow if every claim since came at the last instant (the case that lets B refill least), so
-- the refill never credits more than a claim-time bucket would. Hence the cost claimed in any window
-- of length w is at most capacity + rate * w. Released jobs are claimed at most once (running jobs
-- that fail or are rescued go back through scheduled and held, paying again).
create table :schema.rate_limits (
  -- '' is the queue-wide bucket, shared by every tenant of the queue (one external API key for all).
  tenant_id text collate "C" not null,
  queue text collate "C" not null,
  -- The burst: tokens the bucket holds when full. A job costing more than this costs the capacity.
  capacity integer not null,
  -- Tokens added per second.
  rate double precision not null,
  tokens double precision not null,
  -- Cost of the bucket's jobs released and still pending (unclaimed) right after the last release.
  unclaimed double precision not null default 0,
  refilled_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (tenant_id, queue),
  constraint rate_limits_capacity_range check (capacity between 1 and 1000000),
  -- NaN is above every number in PostgreSQL, so it fails the upper bound.
  constraint rate_limits_rate_range check (rate >= 0.001 and rate <= 1000000),
  constraint rate_limits_tokens_range check (tokens >= 0 and tokens <= capacity),
  constraint rate_limits_unclaimed_range check (unclaimed >= 0),
  constraint rate_limits_tenant_id_bytes check (octet_length(tenant_id) <= 256),
  constraint rate_limits_queue_bytes check (octet_length(queue) between 1 and 128)
);
-- Operator-owned: the worker role and the owner only. A tenant's user role has no privilege on it, so
-- it can neither read nor change its own limit (nor another's).
alter table :schema.rate_limits enable row level security;
create policy rate_limits_worker on :schema.rate_limits to :worker_role using (true) with check (true);
grant select, insert, update, delete on :schema.rate_limits to :worker_role;

-- What a job takes from its buckets when released (a job calling an API three times costs 3). Adding a
-- column with a constant default rewrites nothing; the check reads the live table once (unfinished
-- jobs only) under the lock the column took.
alter table :schema.jobs add column cost integer not null default 1,
  add constraint jobs_cost_range check (cost between 1 and 1000000);
grant select (cost) on :schema.jobs to :user_role;

-- The signed push_jobs (the producer's) and push_jobs_unchecked gain a trailing p_costs array (0018;
-- null: every job costs 1). Both are dropped and created again with it: adding a parameter makes a new
-- function, and the old arity would make calls ambiguous. Bodies as in 0012 / 0016 but for, in
-- push_jobs_unchecked: the p_costs parameter and its unnest column `cost`, the `cost` column of input,
-- of the insert and of the upsert's SET, and v_limited with its `held` case (the lines marked 0018);
-- in push_jobs: p_costs passed on. The worker role's 14-argument push_jobs stays as it is (its jobs
-- cost 1): with p_costs it would take 15 arguments, as many as the signed one, and an untyped
-- 15-argument call would match both.
drop function :schema.push_jobs(text, text, uuid[], text[], text[], text[], bytea[], text[], jsonb[], integer[],
  timestamptz[], integer[], jsonb[], uuid[], uuid[]);
drop function :schema.push_jobs_unchecked(text, uuid[], text[], text[], text[], bytea[], text[], jsonb[],
  integer[], timestamptz[], integer[], jsonb[], uuid[], uuid[]);

create function :schema.push_jobs_unchecked(
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
begin
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
                                   payload_type, target, max_attempts, retry_policy, schedule_id, retry_of, cost)
    select p_tenant, s.id, s.queue, s.type, s.key, s.state, s.priority, s.vt, s.run_at, s.payload,
           s.payload_type, s.target, s.max_attempts, s.retry_policy, s.schedule_id, s.retry_of, s.cost
      from stamped s order by s.ord
    on conflict (tenant_id, queue, key) where key is not null do update
       set type = excluded.type, state = excluded.state, priority = excluded.priority, vt = excluded.vt,
           run_at = excluded.run_at, payload = excluded.payload, payload_type = excluded.payload_type,
           target = excluded.target, max_attempts = excluded.max_attempts, retry_policy = excluded.retry_policy,
           schedule_id = excluded.schedule_id, retry_of = excluded.retry_of, cost = excluded.cost, attempt = 0, last_error = null,
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

revoke all on function :schema.push_jobs_unchecked(text, uuid[], text[], text[], text[], bytea[], text[], jsonb[],
  integer[], timestamptz[], integer[], jsonb[], uuid[], uuid[], integer[]) from public, :worker_role, :user_role;

create function :schema.push_jobs(
  p_tenant text, p_token text, p_ids uuid[], p_queues text[], p_types text[], p_keys text[], p_payloads bytea[],
  p_payload_types text[], p_targets jsonb[], p_priorities integer[], p_run_ats timestamptz[],
  p_max_attempts integer[], p_retry_policies jsonb[], p_schedule_ids uuid[], p_retry_ofs uuid[],
  p_costs integer[] default null) -- 0018: p_costs added
returns table (id uuid, queue text, key text, state text, run_at timestamptz, created_at timestamptz, outcome text)
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
  return query select * from :schema.push_jobs_unchecked(p_tenant, p_ids, p_queues, p_types, p_keys, p_payloads,
    p_payload_types, p_targets, p_priorities, p_run_ats, p_max_attempts, p_retry_policies, p_schedule_ids, p_retry_ofs,
    p_costs);
end
$fn$;

revoke all on function :schema.push_jobs(text, text, uuid[], text[], text[], text[], bytea[], text[], jsonb[], integer[],
  timestamptz[], integer[], jsonb[], uuid[], uuid[], integer[]) from public;
grant execute on function :schema.push_jobs(text, text, uuid[], text[], text[], text[], bytea[], text[], jsonb[], integer[],
  timestamptz[], integer[], jsonb[], uuid[], uuid[], integer[]) to :user_role, :worker_role;
