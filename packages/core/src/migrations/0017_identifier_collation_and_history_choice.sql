-- Two decisions of issue 19.
--
-- 1. Identifiers compare bytewise. tenant_id, queue, type, key, state (and the few other identifiers an
--    index compares) take COLLATE "C": byte order is the right order for identifiers, the same on every
--    server whatever its locale, an OS collation update can no longer leave these indexes out of order,
--    and B-tree comparisons on them stop calling the locale's collation routines. Columns compared with
--    a parameter or a literal keep using their indexes: a parameter has the default collation, and a
--    column's own collation wins over the default. Indexes on the columns are rebuilt by the ALTERs (the
--    heap is not rewritten: the type stays text). Policies that read tenant_id forbid the type change,
--    so they are dropped and created again, unchanged, in this same transaction.
--
-- 2. History of completed jobs is a per-queue choice. queues.keep_completed = false makes the Worker's
--    completion delete a completed job without a history row; failed and cancelled jobs are always
--    kept. Stats still count those completions: the completion statement appends one completion_counts
--    row per (tenant, queue) of its batch, with the count, the latency_bucket() of each completion's
--    wait and run (the readers count them into histograms, so the hot path computes no histogram) and
--    the statement's finished_at, so every window query counts it exactly like the history rows it
--    replaces. Rows are only ever inserted (no row that every
--    worker updates); the rollups fold them in, and Maintenance's retention deletes them with history.

drop policy jobs_tenant on :schema.jobs;
drop policy job_history_tenant on :schema.job_history;
drop policy queues_tenant on :schema.queues;
drop policy schedules_tenant on :schema.schedules;
drop policy worker_metadata_tenant on :schema.worker_metadata;

-- One ALTER per table: one pass, each index rebuilt once.
alter table :schema.jobs
  alter column tenant_id type text collate "C", alter column queue type text collate "C",
  alter column type type text collate "C", alter column key type text collate "C",
  alter column state type text collate "C";
alter table :schema.job_history
  alter column tenant_id type text collate "C", alter column queue type text collate "C",
  alter column type type text collate "C", alter column key type text collate "C",
  alter column state type text collate "C";
alter table :schema.queues alter column tenant_id type text collate "C", alter column queue type text collate "C";
alter table :schema.queue_clocks alter column tenant_id type text collate "C", alter column queue type text collate "C";
alter table :schema.schedules
  alter column tenant_id type text collate "C", alter column key type text collate "C",
  alter column queue type text collate "C", alter column type type text collate "C";
alter table :schema.worker_metadata alter column tenant_id type text collate "C", alter column key type text collate "C";
alter table :schema.history_rollup_minutes alter column queue type text collate "C";
alter table :schema.history_rollup_hours alter column queue type text collate "C";
alter table :schema.live_counts alter column queue type text collate "C";
alter table :schema.nodes alter column node_id type text collate "C";
alter table :schema.locks alter column name type text collate "C";

-- No planner statistics on tenant_id and key (0012), kept explicitly: a type change may reset them.
alter table :schema.jobs alter column tenant_id set statistics 0, alter column key set statistics 0;
alter table :schema.job_history alter column tenant_id set statistics 0, alter column key set statistics 0;
alter table :schema.schedules alter column tenant_id set statistics 0, alter column key set statistics 0;
alter table :schema.worker_metadata alter column tenant_id set statistics 0, alter column key set statistics 0;
alter table :schema.queues alter column tenant_id set statistics 0;

create policy jobs_tenant on :schema.jobs to :user_role
  using (tenant_id = (select :schema.current_tenant())) with check (tenant_id = (select :schema.current_tenant()));
create policy job_history_tenant on :schema.job_history to :user_role
  using (tenant_id = (select :schema.current_tenant())) with check (tenant_id = (select :schema.current_tenant()));
create policy queues_tenant on :schema.queues to :user_role
  using (tenant_id = (select :schema.current_tenant())) with check (tenant_id = (select :schema.current_tenant()));
create policy schedules_tenant on :schema.schedules to :user_role
  using (tenant_id = (select :schema.current_tenant())) with check (tenant_id = (select :schema.current_tenant()));
create policy worker_metadata_tenant on :schema.worker_metadata to :user_role
  using (tenant_id = (select :schema.current_tenant())) with check (tenant_id = (select :schema.current_tenant()));

-- The per-queue choice. The tenant sets it through configureQueue() (column grant below).
alter table :schema.queues add column keep_completed boolean not null default true;
grant update (keep_completed) on :schema.queues to :user_role;
-- What the completion statement probes for each (tenant, queue) it completes: small, as it holds only
-- the queues that drop completed jobs.
create index queues_drop_completed_idx on :schema.queues (tenant_id, queue) where not keep_completed;

-- Completions of queues that keep no completed history: one row per (tenant, queue) per completion
-- statement. id is one job id of the group, unique per tenant since job ids are.
create table :schema.completion_counts (
  tenant_id text collate "C" not null,
  queue text collate "C" not null,
  finished_at timestamptz not null default now(),
  id uuid not null,
  completed integer not null check (completed > 0),
  -- latency_bucket() of each completion's wait (run_at to started_at) and run (started_at to finished_at).
  wait_buckets smallint[] not null,
  run_buckets smallint[] not null,
  primary key (tenant_id, finished_at, id)
);
alter table :schema.completion_counts alter column tenant_id set statistics 0;
-- Global windows (rollup, raw tails) read a time range across tenants; rows arrive in finished_at order.
create index completion_counts_finished_brin on :schema.completion_counts using brin (finished_at) with (autosummarize = on);

alter table :schema.completion_counts enable row level security;
create policy completion_counts_tenant on :schema.completion_counts to :user_role
  using (tenant_id = (select :schema.current_tenant())) with check (tenant_id = (select :schema.current_tenant()));
create policy completion_counts_worker on :schema.completion_counts to :worker_role using (true) with check (true);
grant select on :schema.completion_counts to :user_role;
grant select, insert on :schema.completion_counts to :worker_role;
-- A tenant's latency Stats put its own durations in these buckets when a queue drops completions.
grant execute on function :schema.latency_bucket(double precision) to :user_role;
