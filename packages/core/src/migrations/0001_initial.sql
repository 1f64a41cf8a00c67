
create function :schema.uuid_v7() returns uuid language sql volatile parallel safe as $fn$
  -- 48 bits of Unix milliseconds over a random v4 UUID, then the version nibble raised from 4 to 7.
  select encode(
    set_bit(set_bit(
      overlay(uuid_send(gen_random_uuid())
              placing substring(int8send((extract(epoch from clock_timestamp()) * 1000)::bigint) from 3)
              from 1 for 6),
      52, 1), 53, 1),
    'hex')::uuid
$fn$;

-- The tenant of the current transaction, or null. Set with set_config('pgqueue.tenant', t, true).
create function :schema.current_tenant() returns text language sql stable parallel safe as $fn$
  select nullif(current_setting('pgqueue.tenant', true), '')
$fn$;

-- Live jobs: one row per job that has not finished. See docs/ARCHITECTURE.md for the state machine.
create table :schema.jobs (
  tenant_id text not null,
  id uuid not null default :schema.uuid_v7(),
  queue text not null,
  type text not null,
  key text,
  state text not null,
  priority integer not null default 0,
  vt bigint,
  run_at timestamptz not null default now(),
  payload bytea,
  payload_type text,
  target jsonb,
  attempt integer not null default 0,
  max_attempts integer not null default 5,
  retry_policy jsonb,
  lease_owner text,
  lease_expires_at timestamptz,
  cancel_requested boolean not null default false,
  last_error jsonb,
  schedule_id uuid,
  retry_of uuid,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  started_at timestamptz,
  primary key (tenant_id, id),
  constraint jobs_state_check check (state in ('scheduled', 'pending', 'held', 'running')),
  constraint jobs_pending_has_vt check (state <> 'pending' or vt is not null),
  constraint jobs_running_has_lease check (state <> 'running' or lease_expires_at is not null)
) with (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 1000,
        autovacuum_vacuum_insert_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.05,
        autovacuum_vacuum_cost_delay = 0);

-- A user key is unique per (tenant, queue) among live jobs.
create unique index jobs_key_idx on :schema.jobs (tenant_id, queue, key) where key is not null;
-- The fair claim order: highest priority first, then lowest virtual time.
create index jobs_claim_idx on :schema.jobs (queue, priority desc, vt) where state = 'pending';
-- Delayed and retrying jobs, promoted by the Scheduler when due.
create index jobs_due_idx on :schema.jobs (run_at) where state = 'scheduled';
-- Jobs held back by a paused queue or a concurrency cap, released per (tenant, queue).
create index jobs_held_idx on :schema.jobs (tenant_id, queue, priority desc, run_at) where state = 'held';
-- Lease rescue.
create index jobs_lease_idx on :schema.jobs (lease_expires_at) where state = 'running';
-- Listing and counting per tenant and queue.
create index jobs_tenant_queue_idx on :schema.jobs (tenant_id, queue, state);
create index jobs_schedule_idx on :schema.jobs (tenant_id, schedule_id) where schedule_id is not null;

-- Finished jobs, partitioned by finish time. Partitions are created ahead by Maintenance; the default
-- partition catches anything outside them, so an insert never fails for want of a partition.
create table :schema.job_history (
  tenant_id text not null,
  id uuid not null,
  queue text not null,
  type text not null,
  key text,
  state text not null,
  priority integer not null default 0,
  payload bytea,
  payload_type text,
  target jsonb,
  result bytea,
  result_type text,
  error jsonb,
  attempt integer not null,
  max_attempts integer not null,
  schedule_id uuid,
  retry_of uuid,
  worker_id text,
  created_at timestamptz not null,
  run_at timestamptz not null,
  started_at timestamptz,
  finished_at timestamptz not null default now(),
  primary key (tenant_id, finished_at, id),
  constraint job_history_state_check check (state in ('completed', 'failed', 'cancelled'))
) partition by range (finished_at);

create table :schema.job_history_default partition of :schema.job_history default;
create index job_history_tenant_queue_idx on :schema.job_history (tenant_id, queue, finished_at desc, id desc);
create index job_history_id_idx on :schema.job_history (tenant_id, id);
create index job_history_schedule_idx on :schema.job_history (tenant_id, schedule_id, finished_at desc) where schedule_id is not null;
create index job_history_finished_idx on :schema.job_history (queue, finished_at);

-- Per (tenant, queue) settings.
create table :schema.queues (
  tenant_id text not null,
  queue text not null,
  paused boolean not null default false,
  max_concurrency integer,
  retry_policy jsonb,
  display_name text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (tenant_id, queue),
  constraint queues_max_concurrency_check check (max_concurrency is null or max_concurrency > 0)
);
-- The Scheduler visits pairs that need releasing (paused, capped or holding jobs).
create index queues_throttled_idx on :schema.queues (queue, tenant_id) where paused or max_concurrency is not null;

-- Fair order: the last virtual time handed out per (tenant, queue). Written only through fair_clock_advance().
create table :schema.queue_clocks (
  tenant_id text not null,
  queue text not null,
  last_vt bigint not null,
  primary key (tenant_id, queue)
);
create index queue_clocks_queue_idx on :schema.queue_clocks (queue, last_vt desc);

-- Cron and interval schedules, kept apart from jobs.
create table :schema.schedules (
  tenant_id text not null,
  id uuid not null default :schema.uuid_v7(),
  key text not null,
  queue text not null,
  type text not null,
  cron text,
  timezone text,
  every_ms bigint,
  anchor_at timestamptz,
  missed_policy text not null default 'fire_once',
  payload bytea,
  payload_type text,
  target jsonb,
  priority integer not null default 0,
  retry_policy jsonb,
  paused boolean not null default false,
  next_run_at timestamptz,
  last_run_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (tenant_id, id),
  constraint schedules_key_unique unique (tenant_id, key),
  constraint schedules_kind_check check ((cron is not null and timezone is not null and every_ms is null)
                                      or (cron is null and every_ms is not null and every_ms > 0)),
  constraint schedules_missed_policy_check check (missed_policy in ('fire_once', 'skip'))
);
create index schedules_due_idx on :schema.schedules (next_run_at) where not paused;

-- A small per-tenant key/JSON store for worker-side settings.
create table :schema.worker_metadata (
  tenant_id text not null,
  key text not null,
  value jsonb not null,
  updated_at timestamptz not null default now(),
  primary key (tenant_id, key)
);

-- Live component instances (workers, schedulers, runners), for housekeeping and diagnostics.
create table :schema.nodes (
  node_id text primary key,
  kind text not null,
  started_at timestamptz not null default now(),
  heartbeat_at timestamptz not null default now(),
  info jsonb
);

-- Advances a (tenant, queue) clock by n and returns its new value; the n jobs take the values
-- (new - n, new]. The start is max(the tenant's last value, V) where V is the virtual time at the head
-- of the queue's pending order, so a newly active tenant joins the current round instead of jumping
-- the queue, and a busy tenant's k-th job sits about k rounds ahead. SECURITY DEFINER because V is
-- read across tenants; callers never see it. Callers must advance several clocks in (tenant, queue)
-- order to avoid deadlocks.
create function :schema.fair_clock_advance(p_tenant text, p_queue text, p_n bigint) returns bigint
language plpgsql security definer set search_path = pg_catalog, pg_temp as $fn$
declare
  v_head bigint;
  v_last bigint;
begin
  select j.vt into v_head from :schema.jobs j
   where j.queue = p_queue and j.state = 'pending'
   order by j.priority desc, j.vt limit 1;
  if v_head is null then
    -- Nothing pending: the newest value handed out in this queue is where claiming stopped.
    select c.last_vt into v_head from :schema.queue_clocks c where c.queue = p_queue order by c.last_vt desc limit 1;
  else
    v_head := v_head - 1;
  end if;
  insert into :schema.queue_clocks as c (tenant_id, queue, last_vt)
  values (p_tenant, p_queue, coalesce(v_head, 0) + p_n)
  on conflict (tenant_id, queue) do update set last_vt = greatest(c.last_vt, coalesce(v_head, 0)) + p_n
  returning c.last_vt into v_last;
  return v_last;
end
$fn$;

-- Inserts or replaces (by key) the jobs of one tenant, in one round trip: sets the transaction's
-- tenant, chooses each job's state (scheduled if run_at is ahead, held if its queue is paused or
-- capped, else pending with a fair virtual time), and never replaces a running job.
-- outcome: 'created', 'replaced', or 'running' (a running job holds the key; nothing was written for it).
create function :schema.push_jobs(
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
  with input as (
    select i.ord, i.id, i.queue, i.type, i.key, i.payload, i.payload_type, i.target,
           coalesce(i.priority, 0) as priority, coalesce(i.run_at, now()) as run_at,
           coalesce(i.max_attempts, 5) as max_attempts, i.retry_policy, i.schedule_id, i.retry_of,
           case when coalesce(i.run_at, now()) > now() then 'scheduled'
                when qc.paused or qc.max_concurrency is not null then 'held'
                else 'pending' end as state
      from unnest(p_ids, p_queues, p_types, p_keys, p_payloads, p_payload_types, p_targets, p_priorities,
                  p_run_ats, p_max_attempts, p_retry_policies, p_schedule_ids, p_retry_ofs)
           with ordinality as i(id, queue, type, key, payload, payload_type, target, priority, run_at,
                                max_attempts, retry_policy, schedule_id, retry_of, ord)
      left join :schema.queues qc on qc.tenant_id = p_tenant and qc.queue = i.queue
  ),
  -- One clock advance per queue, in queue order (the sorted subquery fixes the call order).
  clocks as (
    select c.queue, c.n, :schema.fair_clock_advance(p_tenant, c.queue, c.n) as last_vt
      from (select input.queue, count(*) as n from input where input.state = 'pending'
             group by input.queue order by input.queue) c
  ),
  stamped as (
    select input.*,
           case when input.state = 'pending'
                then clocks.last_vt - clocks.n
                     + row_number() over (partition by input.queue, input.state order by input.priority desc, input.ord)
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
  select j.id, j.queue, j.key, j.state, j.run_at, j.created_at, 'running'
    from input p
    join :schema.jobs j on j.tenant_id = p_tenant and j.queue = p.queue and j.key = p.key
   where p.key is not null and j.state = 'running';

  -- Wake idle workers. Empty payload: any role may LISTEN, so it must name no tenant, key or job.
  -- Several pushes in one transaction collapse into one notification.
  if exists (select 1 from unnest(p_run_ats) r where r is null or r <= now()) then
    perform pg_notify(:schema_channel, '');
  end if;
end
$fn$;

-- Row-level security: the user role sees only the transaction's tenant; the worker role sees all.
alter table :schema.jobs enable row level security;
alter table :schema.job_history enable row level security;
alter table :schema.queues enable row level security;
alter table :schema.queue_clocks enable row level security;
alter table :schema.schedules enable row level security;
alter table :schema.worker_metadata enable row level security;

create policy jobs_tenant on :schema.jobs to :user_role
  using (tenant_id = :schema.current_tenant()) with check (tenant_id = :schema.current_tenant());
create policy job_history_tenant on :schema.job_history to :user_role
  using (tenant_id = :schema.current_tenant()) with check (tenant_id = :schema.current_tenant());
create policy queues_tenant on :schema.queues to :user_role
  using (tenant_id = :schema.current_tenant()) with check (tenant_id = :schema.current_tenant());
create policy schedules_tenant on :schema.schedules to :user_role
  using (tenant_id = :schema.current_tenant()) with check (tenant_id = :schema.current_tenant());
create policy worker_metadata_tenant on :schema.worker_metadata to :user_role
  using (tenant_id = :schema.current_tenant()) with check (tenant_id = :schema.current_tenant());

create policy jobs_worker on :schema.jobs to :worker_role using (true) with check (true);
create policy job_history_worker on :schema.job_history to :worker_role using (true) with check (true);
create policy queues_worker on :schema.queues to :worker_role using (true) with check (true);
create policy queue_clocks_worker on :schema.queue_clocks to :worker_role using (true) with check (true);
create policy schedules_worker on :schema.schedules to :worker_role using (true) with check (true);
create policy worker_metadata_worker on :schema.worker_metadata to :worker_role using (true) with check (true);

-- Grants: exactly what each role needs, on parents only (partitions stay unreachable directly).
revoke all on all functions in schema :schema from public;
grant usage on schema :schema to :worker_role, :user_role;

grant select, insert, update, delete on :schema.jobs, :schema.job_history, :schema.queues,
  :schema.queue_clocks, :schema.schedules, :schema.worker_metadata, :schema.nodes to :worker_role;
grant execute on function :schema.uuid_v7(), :schema.current_tenant(),
  :schema.fair_clock_advance(text, text, bigint),
  :schema.push_jobs(text, uuid[], text[], text[], text[], bytea[], text[], jsonb[], integer[], timestamptz[], integer[], jsonb[], uuid[], uuid[])
  to :worker_role;

-- The user role never sees vt (it would reveal other tenants' activity), nor the lease owner.
grant select (tenant_id, id, queue, type, key, state, priority, run_at, payload, payload_type, target, attempt,
              max_attempts, retry_policy, lease_expires_at, cancel_requested, last_error, schedule_id, retry_of,
              created_at, updated_at, started_at)
  on :schema.jobs to :user_role;
grant update (state, vt, run_at, cancel_requested, updated_at) on :schema.jobs to :user_role;
grant delete on :schema.jobs to :user_role;
grant select, insert on :schema.job_history to :user_role;
grant select, insert, update, delete on :schema.queues, :schema.schedules, :schema.worker_metadata to :user_role;
grant execute on function :schema.uuid_v7(), :schema.current_tenant(),
  :schema.push_jobs(text, uuid[], text[], text[], text[], bytea[], text[], jsonb[], integer[], timestamptz[], integer[], jsonb[], uuid[], uuid[])
  to :user_role;
