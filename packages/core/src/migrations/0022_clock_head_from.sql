-- A push under a long transaction on the same database (issue 19).
--
-- While another session holds an old snapshot open (a long report query), the row versions and index
-- entries of every job run since that snapshot stay (they are still visible to it, so neither VACUUM
-- nor a scan can remove them), and three reads of the push walked all of them, once per push:
-- - fair_clock_advance() (0015) read the queue's head, the lowest pending vt, from the front of
--   jobs_claim_idx, through the entries of every job claimed since the snapshot (measured: 1,600
--   entries per scan after 10 s, 8,900 after 40 s, and the push slowed down as fast);
-- - with nothing pending (a queue whose worker keeps up), it read the newest clock of the queue from
--   every version of every clock row of the queue (each push writes one);
-- - push_jobs_unchecked()'s read of running jobs holding a pushed key was planned as a scan of the
--   tenant's running entries in jobs_state_idx, every one the tenant ran since the snapshot, even for
--   a push without keys.
--
-- Now:
-- - each (tenant, queue) clock row keeps head_vt, the head its last advance saw, and the pair's next
--   advance reads the head from there on, past the entries of jobs claimed before. The head only moves
--   up, except for a job that comes back to pending with the vt it had (a release at shutdown, a
--   rescued lease) or one pushed from an older head (concurrently, or from a head up to a second old,
--   below): such a job below head_vt is not seen by this pair's next advance, so if the pair joins the
--   round then, it starts after that job rather than beside it (one slot later per such job; the claim
--   still takes the job first). A pair without head_vt (new, or from before this migration) reads from
--   the front once.
-- - with nothing pending from head_vt on, head_vt moves up to the pair's own clock (what it pushes now
--   goes above it, and so does what others push after it), so an idle queue's next read starts there.
-- - with nothing pending from head_vt on, a pair whose head was read less than a second ago
--   (head_at, the server's clock) goes on from that head instead of reading every clock of the queue;
--   older than that, it reads them as before and keeps the result. So a tenant coming back to an idle
--   queue within a second of its last push may start up to one second of the others' progress early
--   (bounded: the jobs the others' clocks advanced by in that second), never later.
-- - the advance is one UPDATE of the clock row (the head read is its subquery) instead of a SELECT of
--   the head and an upsert, so the usual push walks the row's versions once; the pair's first advance
--   still inserts it (the upsert as before).
-- - the read of running jobs by key is a jobs_key_idx probe per keyed job, and nothing without keys.
-- The clock row's own versions still pile up under an old snapshot (one per push of the pair): that
-- walk grows too, much more slowly (see apps/bench/LOG.md).
alter table :schema.queue_clocks add column head_vt bigint, add column head_at timestamptz;

create or replace function :schema.fair_clock_advance(p_tenant text, p_queue text, p_n bigint) returns bigint
language plpgsql security definer set search_path = pg_catalog, pg_temp set enable_seqscan = off as $fn$
declare
  v_seen bigint;
  v_head bigint;
  v_last bigint;
  v_stride bigint := :schema.fair_clock_stride(p_tenant, p_queue);
begin
  -- The usual advance: the pair's row is there; read the head from the one it saw last time.
  update :schema.queue_clocks as c
     set (last_vt, head_vt, head_at) = (
           select greatest(c.last_vt, coalesce(h.vt - v_stride, h.idle_vt)) + p_n * v_stride,
                  coalesce(h.vt, greatest(h.idle_vt, c.last_vt)),
                  case when h.vt is null and h.recent then c.head_at else clock_timestamp() end
             -- OFFSET 0 keeps each read a subquery run once (flattened, it ran once per reference).
             from (select h0.vt, h0.recent,
                          case when h0.vt is null then
                            case when h0.recent then c.head_vt
                                 -- Nothing pending: the newest value handed out in this queue is where
                                 -- claiming stopped.
                                 else (select q.last_vt from :schema.queue_clocks q where q.queue = p_queue
                                        order by q.last_vt desc limit 1) end end as idle_vt
                     from (select (select j.vt from :schema.jobs j
                                    where j.queue = p_queue and j.state = 'pending'
                                      and j.vt >= coalesce(c.head_vt, -9223372036854775808)
                                    order by j.vt limit 1) as vt,
                                  coalesce(c.head_at > clock_timestamp() - interval '1 second', false) as recent
                           offset 0) h0
                   offset 0) h)
   where c.tenant_id = p_tenant and c.queue = p_queue
  returning c.last_vt into v_last;
  if found then
    return v_last;
  end if;

  -- The pair's first advance (as in 0015): the head from the front of the index.
  select j.vt into v_seen from :schema.jobs j
   where j.queue = p_queue and j.state = 'pending'
   order by j.vt limit 1;
  if v_seen is null then
    select c.last_vt into v_head from :schema.queue_clocks c where c.queue = p_queue order by c.last_vt desc limit 1;
    v_seen := v_head;
  else
    -- A tenant joining the round gets its first job at the head itself.
    v_head := v_seen - v_stride;
  end if;
  insert into :schema.queue_clocks as c (tenant_id, queue, last_vt, head_vt, head_at)
  values (p_tenant, p_queue, coalesce(v_head, 0) + p_n * v_stride, v_seen, clock_timestamp())
  on conflict (tenant_id, queue) do update set last_vt = greatest(c.last_vt, coalesce(v_head, 0)) + p_n * v_stride
  returning c.last_vt into v_last;
  return v_last;
end
$fn$;

-- push_jobs_unchecked() as in 0020 (0018's costs and rate limits, 0020's trace context) with one change,
-- marked [0022]: the read of running jobs holding a pushed key. Same signature, so its grants stand.
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
  -- [0022] One jobs_key_idx probe per keyed job, and none without keys: joined plainly, the planner
  -- could read the tenant's running jobs from jobs_state_idx first, and under an old snapshot that
  -- walks every job the tenant ran since (OFFSET 0 keeps the lateral subquery a per-row probe).
  running as (
    select g.ord, j.id, j.queue, j.key, j.state, j.run_at, j.created_at
      from given g
     cross join lateral (
       select j.id, j.queue, j.key, j.state, j.run_at, j.created_at from :schema.jobs j
        where j.tenant_id = p_tenant and j.queue = g.queue and j.key = g.key and j.state = 'running'
       offset 0) j
     where g.key is not null
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

