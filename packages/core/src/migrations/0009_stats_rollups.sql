
-- The latency bucket of a duration in ms (0 for under 1 ms), shared by the rollup and by Stats' raw tail.
create function :schema.latency_bucket(ms double precision) returns integer
language sql immutable parallel safe as $fn$
  select case when ms < 1 then 0 else least(107, 1 + floor(4 * ln(ms) / ln(2.0))::integer) end
$fn$;
revoke all on function :schema.latency_bucket(double precision) from public;
grant execute on function :schema.latency_bucket(double precision) to :worker_role;

-- Finished jobs per minute (kept for a short time) and per hour (kept as long as history), all tenants.
create table :schema.history_rollup_minutes (
  bucket timestamptz not null,
  queue text not null,
  completed integer not null,
  failed integer not null,
  cancelled integer not null,
  last_failure_at timestamptz,
  wait_hist integer[] not null,
  run_hist integer[] not null,
  primary key (bucket, queue)
);
create table :schema.history_rollup_hours (like :schema.history_rollup_minutes including all);

-- One row: how far the rollups reach. Every history row with finished_at < rolled_up_to is in them.
create table :schema.stats_rollup_state (
  id boolean primary key default true check (id),
  rolled_up_to timestamptz,
  -- Minute rows are complete from here on (older ones were never written, or were deleted).
  minutes_from timestamptz,
  live_counts_at timestamptz,
  updated_at timestamptz not null default now()
);
insert into :schema.stats_rollup_state default values;

-- A snapshot of live counts per queue, all tenants, taken by Maintenance at live_counts_at.
create table :schema.live_counts (
  queue text primary key,
  pending integer not null,
  scheduled integer not null,
  running integer not null,
  retrying integer not null,
  oldest_pending_run_at timestamptz
);

grant select on :schema.history_rollup_minutes, :schema.history_rollup_hours, :schema.stats_rollup_state,
  :schema.live_counts to :worker_role;
