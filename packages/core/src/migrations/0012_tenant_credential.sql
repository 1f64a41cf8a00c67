
create table :schema.tenant_secret (
  singleton boolean primary key default true check (singleton),
  secret text not null check (length(secret) >= 32),
  -- HMAC's two padded keys, derived from the secret once instead of on every check.
  inner_key bytea not null,
  outer_key bytea not null,
  updated_at timestamptz not null default now()
);
revoke all on :schema.tenant_secret from public;

-- Sets (or replaces) the tenant secret. Owner only: initialize() calls it with an operator's secret.
create function :schema.set_tenant_secret(p_secret text) returns void
language plpgsql security definer set search_path = pg_catalog, pg_temp as $fn$
declare
  v_key bytea := convert_to(p_secret, 'UTF8');
  v_inner bytea;
  v_outer bytea;
begin
  if p_secret is null or length(p_secret) < 32 then
    raise exception 'pgqueue: the tenant secret must be at least 32 characters' using errcode = '22023';
  end if;
  if length(v_key) > 64 then v_key := sha256(v_key); end if;
  v_key := v_key || decode(repeat('00', 64 - length(v_key)), 'hex');
  v_inner := v_key;
  v_outer := v_key;
  for i in 0..63 loop
    v_inner := set_byte(v_inner, i, get_byte(v_key, i) # 54);   -- 0x36
    v_outer := set_byte(v_outer, i, get_byte(v_key, i) # 92);   -- 0x5c
  end loop;
  insert into :schema.tenant_secret (singleton, secret, inner_key, outer_key)
  values (true, p_secret, v_inner, v_outer)
  on conflict (singleton) do update
    set secret = excluded.secret, inner_key = excluded.inner_key, outer_key = excluded.outer_key, updated_at = now();
end
$fn$;
revoke all on function :schema.set_tenant_secret(text) from public;

-- A random secret, so every installation is protected from its first migration; 244 random bits.
select :schema.set_tenant_secret(encode(sha256(convert_to(gen_random_uuid()::text || gen_random_uuid()::text, 'UTF8')), 'hex'));

-- The verified tenant of the current transaction, or null when none is set. A tenant set with a missing
-- or wrong token raises 42501, so a mistake fails loudly instead of reading as an empty tenant.
create or replace function :schema.current_tenant() returns text
language plpgsql stable security definer set search_path = pg_catalog, pg_temp as $fn$
declare
  v_tenant text := nullif(current_setting('pgqueue.tenant', true), '');
  v_token text := current_setting('pgqueue.tenant_token', true);
  k record;
begin
  if v_tenant is null then
    return null;
  end if;
  select s.inner_key, s.outer_key into k from :schema.tenant_secret s;
  if v_token is null or k is null
     or v_token <> encode(sha256(k.outer_key || sha256(k.inner_key || convert_to(v_tenant, 'UTF8'))), 'hex') then
    raise exception 'pgqueue: the transaction''s tenant is not signed with this installation''s tenant secret'
      using errcode = '42501', hint = 'pass the tenantSecret that initialize() returned to the producer and Stats';
  end if;
  return v_tenant;
end
$fn$;

-- Raises unless the caller may act for p_tenant: the transaction is signed in as that tenant, or the
-- login is a member of the worker role or of the schema owner (both trusted with every tenant).
create function :schema.require_tenant(p_tenant text) returns void
language plpgsql stable security definer set search_path = pg_catalog, pg_temp as $fn$
begin
  if p_tenant is null or p_tenant = '' then
    raise exception 'pgqueue: a tenant is required' using errcode = '42501';
  end if;
  if pg_has_role(session_user, :worker_role_name, 'member')
     or pg_has_role(session_user, (select c.relowner from pg_class c where c.oid = ':schema.jobs'::regclass), 'member') then
    return;
  end if;
  if :schema.current_tenant() is distinct from p_tenant then
    raise exception 'pgqueue: the transaction is not signed in as tenant %', quote_literal(p_tenant) using errcode = '42501';
  end if;
end
$fn$;
revoke all on function :schema.require_tenant(text) from public;

alter policy jobs_tenant on :schema.jobs
  using (tenant_id = (select :schema.current_tenant())) with check (tenant_id = (select :schema.current_tenant()));
alter policy job_history_tenant on :schema.job_history
  using (tenant_id = (select :schema.current_tenant())) with check (tenant_id = (select :schema.current_tenant()));
alter policy queues_tenant on :schema.queues
  using (tenant_id = (select :schema.current_tenant())) with check (tenant_id = (select :schema.current_tenant()));
alter policy schedules_tenant on :schema.schedules
  using (tenant_id = (select :schema.current_tenant())) with check (tenant_id = (select :schema.current_tenant()));
alter policy worker_metadata_tenant on :schema.worker_metadata
  using (tenant_id = (select :schema.current_tenant())) with check (tenant_id = (select :schema.current_tenant()));

-- The 14-argument push_jobs (0002) stays for the worker role: it now checks its caller first. Its body is
-- unchanged but for that check, so it is wrapped: the original is renamed and called by the checked one.
alter function :schema.push_jobs(text, uuid[], text[], text[], text[], bytea[], text[], jsonb[], integer[],
                                 timestamptz[], integer[], jsonb[], uuid[], uuid[])
  rename to push_jobs_unchecked;
revoke all on function :schema.push_jobs_unchecked(text, uuid[], text[], text[], text[], bytea[], text[], jsonb[],
  integer[], timestamptz[], integer[], jsonb[], uuid[], uuid[]) from public, :worker_role, :user_role;

-- push_jobs (0002) without locking a running job's row: see the running CTE. Called by both push_jobs.
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
                else 'pending' end as state
      from given i
      left join :schema.queues qc on qc.tenant_id = p_tenant and qc.queue = i.queue
     where i.ord not in (select running.ord from running)
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
  select r.id, r.queue, r.key, r.state, r.run_at, r.created_at, 'running' from running r;

  -- Wake idle workers. Empty payload: any role may LISTEN, so it must name no tenant, key or job.
  -- Several pushes in one transaction collapse into one notification.
  if exists (select 1 from unnest(p_run_ats) r where r is null or r <= now()) then
    perform pg_notify(:schema_channel, '');
  end if;
end
$fn$;

create function :schema.push_jobs(
  p_tenant text, p_ids uuid[], p_queues text[], p_types text[], p_keys text[], p_payloads bytea[],
  p_payload_types text[], p_targets jsonb[], p_priorities integer[], p_run_ats timestamptz[],
  p_max_attempts integer[], p_retry_policies jsonb[], p_schedule_ids uuid[], p_retry_ofs uuid[])
returns table (id uuid, queue text, key text, state text, run_at timestamptz, created_at timestamptz, outcome text)
language plpgsql security definer set search_path = pg_catalog, pg_temp as $fn$
begin
  perform :schema.require_tenant(p_tenant);
  return query select * from :schema.push_jobs_unchecked(p_tenant, p_ids, p_queues, p_types, p_keys, p_payloads,
    p_payload_types, p_targets, p_priorities, p_run_ats, p_max_attempts, p_retry_policies, p_schedule_ids, p_retry_ofs);
end
$fn$;

-- The user role's push: signs the transaction in as p_tenant with p_token (still one round trip) and
-- pushes. A wrong token raises 42501 and writes nothing.
create function :schema.push_jobs(
  p_tenant text, p_token text, p_ids uuid[], p_queues text[], p_types text[], p_keys text[], p_payloads bytea[],
  p_payload_types text[], p_targets jsonb[], p_priorities integer[], p_run_ats timestamptz[],
  p_max_attempts integer[], p_retry_policies jsonb[], p_schedule_ids uuid[], p_retry_ofs uuid[])
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
    p_payload_types, p_targets, p_priorities, p_run_ats, p_max_attempts, p_retry_policies, p_schedule_ids, p_retry_ofs);
end
$fn$;

revoke all on function :schema.push_jobs(text, uuid[], text[], text[], text[], bytea[], text[], jsonb[], integer[],
  timestamptz[], integer[], jsonb[], uuid[], uuid[]) from public;
grant execute on function :schema.push_jobs(text, uuid[], text[], text[], text[], bytea[], text[], jsonb[], integer[],
  timestamptz[], integer[], jsonb[], uuid[], uuid[]) to :worker_role;
revoke all on function :schema.push_jobs(text, text, uuid[], text[], text[], text[], bytea[], text[], jsonb[], integer[],
  timestamptz[], integer[], jsonb[], uuid[], uuid[]) from public;
grant execute on function :schema.push_jobs(text, text, uuid[], text[], text[], text[], bytea[], text[], jsonb[], integer[],
  timestamptz[], integer[], jsonb[], uuid[], uuid[]) to :user_role, :worker_role;

-- hold_jobs (0006) with the signed-in check.
create or replace function :schema.hold_jobs(p_tenant text, p_queue text) returns integer
language plpgsql security definer set search_path = pg_catalog, pg_temp as $fn$
declare
  v_moved integer;
begin
  perform :schema.require_tenant(p_tenant);
  update :schema.jobs set state = 'held', vt = null, updated_at = now()
   where tenant_id = p_tenant and queue = p_queue and state = 'pending';
  get diagnostics v_moved = row_count;
  return v_moved;
end
$fn$;

-- Removes one job of the signed-in tenant, by id or by (queue, key). A waiting job is deleted (and, with
-- p_archive, recorded in history as cancelled in the same statement, so it is in one place at every
-- instant); a running job is only flagged: its worker aborts it at its next lease renewal. Both branches
-- read one snapshot and their state predicates are disjoint, so exactly one acts.
-- action: 'deleted', 'cancelled' or 'flagged'; no row when nothing matched.
create function :schema.job_remove(p_tenant text, p_id uuid, p_queue text, p_key text, p_archive boolean)
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
                                     attempt, max_attempts, schedule_id, retry_of, created_at, run_at, started_at,
                                     error, finished_at)
    select r.tenant_id, r.id, r.queue, r.type, r.key, 'cancelled', r.priority, r.payload, r.payload_type, r.target,
           r.attempt, r.max_attempts, r.schedule_id, r.retry_of, r.created_at, r.run_at, r.started_at,
           r.last_error, now()
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
revoke all on function :schema.job_remove(text, uuid, text, text, boolean) from public;
grant execute on function :schema.job_remove(text, uuid, text, text, boolean) to :user_role;

create function :schema.schedule_delete(p_tenant text, p_key text) returns boolean
language plpgsql security definer set search_path = pg_catalog, pg_temp as $fn$
begin
  perform :schema.require_tenant(p_tenant);
  delete from :schema.schedules where tenant_id = p_tenant and key = p_key;
  return found;
end
$fn$;
revoke all on function :schema.schedule_delete(text, text) from public;
grant execute on function :schema.schedule_delete(text, text) to :user_role;

create function :schema.worker_metadata_delete(p_tenant text, p_key text) returns boolean
language plpgsql security definer set search_path = pg_catalog, pg_temp as $fn$
begin
  perform :schema.require_tenant(p_tenant);
  delete from :schema.worker_metadata where tenant_id = p_tenant and key = p_key;
  return found;
end
$fn$;
revoke all on function :schema.worker_metadata_delete(text, text) from public;
grant execute on function :schema.worker_metadata_delete(text, text) to :user_role;

-- The user role: SELECT, column UPDATE where settings are edited in place, INSERT of settings rows.
revoke update, delete on :schema.jobs from :user_role;
revoke update (cancel_requested, updated_at) on :schema.jobs from :user_role;
revoke insert, update, delete on :schema.job_history from :user_role;
revoke update, delete on :schema.queues, :schema.schedules, :schema.worker_metadata from :user_role;
grant update (paused, max_concurrency, retry_policy, display_name, updated_at) on :schema.queues to :user_role;
grant update (queue, type, cron, timezone, every_ms, anchor_at, missed_policy, payload, payload_type, target, priority,
              retry_policy, paused, next_run_at, updated_at) on :schema.schedules to :user_role;
grant update (value, updated_at) on :schema.worker_metadata to :user_role;

-- The worker role: what Worker, Scheduler, ScheduleRunner and Stats use, and no more.
revoke insert, update, delete on :schema.queue_clocks from :worker_role;
revoke update, delete on :schema.job_history from :worker_role;
revoke insert, update on :schema.jobs from :worker_role;
grant update (state, vt, run_at, attempt, lease_owner, lease_expires_at, cancel_requested, last_error, started_at,
              updated_at) on :schema.jobs to :worker_role;
revoke insert, update, delete on :schema.worker_metadata from :worker_role;
revoke insert, delete on :schema.queues, :schema.schedules from :worker_role;
grant execute on function :schema.require_tenant(text) to :worker_role, :user_role;

-- The schema version and the pgqueue role of the session's login: owner (or superuser), worker, user or none.
create function :schema.installation() returns table (version integer, login_role text)
language sql stable security definer set search_path = pg_catalog, pg_temp as $fn$
  select (select max(m.version) from :schema.migrations m),
         case when pg_has_role(session_user, (select c.relowner from pg_class c where c.oid = ':schema.jobs'::regclass), 'member') then 'owner'
              when pg_has_role(session_user, :worker_role_name, 'member') then 'worker'
              when pg_has_role(session_user, :user_role_name, 'member') then 'user'
              else 'none' end
$fn$;
revoke all on function :schema.installation() from public;
grant execute on function :schema.installation() to :worker_role, :user_role;

alter table :schema.jobs alter column tenant_id set statistics 0, alter column key set statistics 0;
alter table :schema.job_history alter column tenant_id set statistics 0, alter column key set statistics 0;
alter table :schema.job_history_default alter column tenant_id set statistics 0, alter column key set statistics 0;
alter table :schema.schedules alter column tenant_id set statistics 0, alter column key set statistics 0;
alter table :schema.worker_metadata alter column tenant_id set statistics 0, alter column key set statistics 0;
alter table :schema.queues alter column tenant_id set statistics 0;
