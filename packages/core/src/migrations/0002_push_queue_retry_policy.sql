
-- Inserts or replaces (by key) the jobs of one tenant, in one round trip: sets the transaction's
-- tenant, chooses each job's state (scheduled if run_at is ahead, held if its queue is paused or
-- capped, else pending with a fair virtual time), and never replaces a running job.
-- outcome: 'created', 'replaced', or 'running' (a running job holds the key; nothing was written for it).
create or replace function :schema.push_jobs(
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
           coalesce(i.max_attempts, (qc.retry_policy->>'maxAttempts')::integer, 5) as max_attempts, i.retry_policy, i.schedule_id, i.retry_of,
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
