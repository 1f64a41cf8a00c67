-- Two changes, both about what a job is given when nobody says otherwise.
--
-- 1. queue_defaults: an operator's retry policy for a queue, for every tenant. A job takes its own
--    policy, else its tenant's queue policy (queues.retry_policy), else this, else the built-in default.
--    Operator-owned like fair_weights: the worker role reads and writes it; a tenant's user role has no
--    grant, and push_jobs_unchecked() (security definer) reads it for max_attempts. No tenant column:
--    it is the same for all, so RLS has nothing to scope.
-- 2. job_remove() records a cancelled waiting job with the error record the Worker writes for a cancelled
--    run (name JobAbortedError, code CANCELLED), instead of the last run's error or null, and writes
--    history's columns in the order of core's jobHistoryInsertSql() (a test compares the two).

create table :schema.queue_defaults (
  queue text collate "C" primary key,
  retry_policy jsonb not null,
  updated_at timestamptz not null default now(),
  constraint queue_defaults_queue_bytes check (octet_length(queue) between 1 and 128),
  constraint queue_defaults_retry_policy_size check (pg_column_size(retry_policy) <= 8192)
);
grant select, insert, update, delete on :schema.queue_defaults to :worker_role;

-- push_jobs_unchecked() as in 0015, with max_attempts falling back to queue_defaults.
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
           coalesce(i.max_attempts, (qc.retry_policy->>'maxAttempts')::integer,
                    (qd.retry_policy->>'maxAttempts')::integer, 5) as max_attempts, i.retry_policy, i.schedule_id, i.retry_of,
           case when coalesce(i.run_at, now()) > now() then 'scheduled'
                when qc.paused or qc.max_concurrency is not null then 'held'
                when fb.until > now() then 'held'
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

-- job_remove() as in 0012, with the cancel record. Same signature, so 0012's grants still apply.
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
                                     worker_id, created_at, run_at, started_at, finished_at)
    select r.tenant_id, r.id, r.queue, r.type, r.key, 'cancelled', r.priority, r.payload, r.payload_type, r.target,
           null, null,
           jsonb_build_object('message', 'job cancelled before it ran', 'name', 'JobAbortedError', 'code', 'CANCELLED',
                              'at', to_char(now() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')),
           r.attempt, r.max_attempts, r.schedule_id, r.retry_of,
           null, r.created_at, r.run_at, r.started_at, now()
      from removed r where p_archive
    returning 1
  ), flagged as (
    update :schema.jobs j set cancel_requested = true, updated_at = now()
      from target t
     where j.tenant_id = t.tenant_id and j.id = t.id and j.state = 'running'
    returning j.id
  )
  select r.id, case when p_archive then 'cancelled' else 'deleted' end from removed r
  union all
  select f.id, 'flagged' from flagged f;
end
$fn$;
