
create index schedules_tenant_due_idx on :schema.schedules (tenant_id, next_run_at) where not paused;
