/**
 * One index fewer for every claim to write. A claim turns a pending row into a running one, which is
 * not a HOT update (state is indexed), so it adds an entry to every index of the live table: the
 * primary key, jobs_tenant_queue_idx and jobs_lease_idx. One index on (state, tenant_id, queue) now
 * serves what those two did:
 * - per (tenant, queue) counts of given states (concurrency caps, hold_jobs()) probe it with the state
 *   first; a tenant's listing and counts over all states use the primary key (tenant_id, id);
 * - lease rescue reads the running rows through it and checks their expiry. Running rows are the jobs
 *   in flight and in workers' buffers, a small set, and the Scheduler rescues at most once a second.
 * A claim's entry lands in the small `running` part of the index instead of the middle of a tenant's
 * range, and lease renewals become HOT updates, since lease_expires_at is no longer indexed.
 */
export default /* sql */ `
create index jobs_state_idx on :schema.jobs (state, tenant_id, queue);
drop index :schema.jobs_tenant_queue_idx;
drop index :schema.jobs_lease_idx;
`
