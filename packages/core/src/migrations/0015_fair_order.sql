-- The fair order completed (issue 18): priority orders a tenant's own jobs only.
--
-- Before, jobs_claim_idx was (queue, priority desc, vt) and both the claim and fair_clock_advance()
-- took the head of a queue by priority first, so a tenant pushing priority 1 went ahead of every other
-- tenant. Now a pending job's vt is its tenant's "slot" in the queue's fair order, and priority only
-- decides which of the tenant's own jobs fills a slot:
-- - jobs_claim_idx (queue, vt): the slots, lowest first; fair_clock_advance() reads the queue's head
--   from it (same SET enable_seqscan = off as 0008, which CREATE OR REPLACE would otherwise drop).
-- - jobs_tenant_claim_idx (tenant_id, queue, priority desc, vt): a tenant's own order in a queue,
--   used by the claim to fill the tenant's slots, and by the Worker to find tenants with work.
-- - jobs_priority_idx (queue) of pending jobs whose priority is not 0: lets the Worker use the plain
--   vt claim, as cheap as before, on queues where nobody uses priorities.
-- - jobs_tenant_due_idx (tenant_id, run_at) of scheduled jobs: the Scheduler finds tenants with due
--   jobs by a skip-scan (a tenant's first entry is its earliest run_at) and promotes an equal part of
--   each one's due jobs, so one tenant's million jobs due at one instant do not hold back the others.
--
-- Weights: fair_weights and fair_clock_stride(): a job of a pair takes 1000 / weight of virtual time
-- instead of 1, stamped by fair_clock_advance(), push_jobs_unchecked() and the Scheduler's stamping.
-- Jobs pending at the upgrade keep their vt (one apart), so they simply run first.
-- Back-off: fair_blocks, (tenant, queue) blocked until a time; see the table's comment.
--
-- Cost on a big installation: each CREATE INDEX reads the live table under a SHARE lock (pushes wait,
-- claims go on); the live table only holds unfinished jobs.
drop index :schema.jobs_claim_idx;
create index jobs_claim_idx on :schema.jobs (queue, vt) where state = 'pending';
create index jobs_tenant_claim_idx on :schema.jobs (tenant_id, queue, priority desc, vt) where state = 'pending';
create index jobs_tenant_due_idx on :schema.jobs (tenant_id, run_at) where state = 'scheduled';
-- Pending jobs with a priority other than 0, per queue: empty (and never written) while nobody uses
-- priorities, so the Worker's probe of it tells in one step whether a queue needs the priority claim.
create index jobs_priority_idx on :schema.jobs (queue) where state = 'pending' and priority <> 0;

-- Operator-set weights (issue 18): per tenant (queue '') and optionally per (tenant, queue), the
-- latter winning. Only the worker role and the owner read or write them; a tenant cannot see or set
-- its own weight. Weights between 0.001 and 1000 (NaN fails the check too).
create table :schema.fair_weights (
  tenant_id text collate "C" not null,
  queue text collate "C" not null default '',
  weight double precision not null,
  updated_at timestamptz not null default now(),
  primary key (tenant_id, queue),
  constraint fair_weights_weight_range check (weight >= 0.001 and weight <= 1000),
  constraint fair_weights_tenant_id_bytes check (octet_length(tenant_id) between 1 and 256),
  constraint fair_weights_queue_bytes check (octet_length(queue) <= 128)
);
alter table :schema.fair_weights enable row level security;
create policy fair_weights_worker on :schema.fair_weights to :worker_role using (true) with check (true);
grant select, insert, update, delete on :schema.fair_weights to :worker_role;

-- The virtual time one job of (tenant, queue) takes: 1000 / weight (1000 at the default weight 1, 1
-- at weight 1000), so backlogged pairs are served in proportion to their weights and even the lowest
-- weight keeps a place in every round. An empty table costs one index probe.
-- plpgsql, not sql: a SECURITY DEFINER sql function is never inlined and its query is planned again at
-- every call, while plpgsql keeps the plan for the session (push_jobs() calls this once per queue).
create function :schema.fair_clock_stride(p_tenant text, p_queue text) returns bigint
language plpgsql stable security definer set search_path = pg_catalog, pg_temp as $fn$
begin
  return coalesce((select greatest(1, round(1000 / w.weight))::bigint from :schema.fair_weights w
                    where w.tenant_id = p_tenant and w.queue in (p_queue, '')
                    order by w.queue desc limit 1), 1000);
end
$fn$;
-- Back-off (issue 18): a (tenant, queue) whose handler backed off waits until `until` on every Worker.
-- The worker role writes it (a completion), the push and the Scheduler read it; its pending jobs sit
-- in held meanwhile, so no claim steps over them. Expired rows are harmless (one per pair).
create table :schema.fair_blocks (
  tenant_id text collate "C" not null,
  queue text collate "C" not null,
  until timestamptz not null,
  primary key (tenant_id, queue)
);
alter table :schema.fair_blocks enable row level security;
create policy fair_blocks_worker on :schema.fair_blocks to :worker_role using (true) with check (true);
grant select, insert, update, delete on :schema.fair_blocks to :worker_role;

revoke all on function :schema.fair_clock_stride(text, text) from public;
grant execute on function :schema.fair_clock_stride(text, text) to :worker_role;

create or replace function :schema.fair_clock_advance(p_tenant text, p_queue text, p_n bigint) returns bigint
language plpgsql security definer set search_path = pg_catalog, pg_temp set enable_seqscan = off as $fn$
declare
  v_head bigint;
  v_last bigint;
  v_stride bigint := :schema.fair_clock_stride(p_tenant, p_queue);
begin
  -- The head is the lowest slot of the queue, whatever its priority: priority never moves a tenant's
  -- clock, so it cannot move the tenant ahead of others.
  select j.vt into v_head from :schema.jobs j
   where j.queue = p_queue and j.state = 'pending'
   order by j.vt limit 1;
  if v_head is null then
    -- Nothing pending: the newest value handed out in this queue is where claiming stopped.
    select c.last_vt into v_head from :schema.queue_clocks c where c.queue = p_queue order by c.last_vt desc limit 1;
  else
    -- A tenant joining the round gets its first job at the head itself.
    v_head := v_head - v_stride;
  end if;
  insert into :schema.queue_clocks as c (tenant_id, queue, last_vt)
  values (p_tenant, p_queue, coalesce(v_head, 0) + p_n * v_stride)
  on conflict (tenant_id, queue) do update set last_vt = greatest(c.last_vt, coalesce(v_head, 0)) + p_n * v_stride
  returning c.last_vt into v_last;
  return v_last;
end
$fn$;

create or replace function :schema.push_jobs_unchecked(
  p_tenant text, p_ids uuid[], p_queues text[], p_types text[], p_keys text[], p_payloads bytea[],
  p_payload_types text[], p_targets jsonb[], p_priorities integer[], p_run_ats timestamptz[],
  p_max_attempts integer[], p_retry_policies jsonb[], p_schedule_ids uuid[], p_retry_ofs uuid[])
returns table (id uuid, queue text, key text, state text, run_at timestamptz, created_at timestamptz, outcome text)
language plpgsql security definer set search_path = pg_catalog, pg_temp as $fn$
#variable_conflict use_column
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

  return query
  with given as (
    select * from unnest(p_ids, p_queues, p_types, p_keys, p_payloads, p_payload_types, p_targets, p_priorities,
                         p_run_ats, p_max_attempts, p_retry_policies, p_schedule_ids, p_retry_ofs)
           with ordinality as i(id, queue, type, key, payload, payload_type, target, priority, run_at,
                                max_attempts, retry_policy, schedule_id, retry_of, ord)
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
           coalesce(i.max_attempts, (qc.retry_policy->>'maxAttempts')::integer, 5) as max_attempts, i.retry_policy, i.schedule_id, i.retry_of,
           case when coalesce(i.run_at, now()) > now() then 'scheduled'
                when qc.paused or qc.max_concurrency is not null then 'held'
                when fb.until > now() then 'held'
                else 'pending' end as state
      from given i
      left join :schema.queues qc on qc.tenant_id = p_tenant and qc.queue = i.queue
      left join :schema.fair_blocks fb on fb.tenant_id = p_tenant and fb.queue = i.queue
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
                                   payload_type, target, max_attempts, retry_policy, schedule_id, retry_of)
    select p_tenant, s.id, s.queue, s.type, s.key, s.state, s.priority, s.vt, s.run_at, s.payload,
           s.payload_type, s.target, s.max_attempts, s.retry_policy, s.schedule_id, s.retry_of
      from stamped s order by s.ord
    on conflict (tenant_id, queue, key) where key is not null do update
       set type = excluded.type, state = excluded.state, priority = excluded.priority, vt = excluded.vt,
           run_at = excluded.run_at, payload = excluded.payload, payload_type = excluded.payload_type,
           target = excluded.target, max_attempts = excluded.max_attempts, retry_policy = excluded.retry_policy,
           schedule_id = excluded.schedule_id, retry_of = excluded.retry_of, attempt = 0, last_error = null,
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
