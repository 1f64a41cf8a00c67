
create index jobs_state_idx on :schema.jobs (state, tenant_id, queue);
drop index :schema.jobs_tenant_queue_idx;
drop index :schema.jobs_lease_idx;
