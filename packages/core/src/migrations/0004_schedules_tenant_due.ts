/**
 * The ScheduleRunner's fair selection. Placeholders as in 0001.
 * The runner walks the distinct tenants that have unpaused schedules (a skip-scan: one index descent
 * per tenant) and reads each tenant's earliest next_run_at from the first index entry, so finding the
 * tenants with due work never scans a tenant's schedules; it then takes at most a fair share of each
 * due tenant's schedules in next_run_at order from the same index.
 */
export default /* sql */ `
create index schedules_tenant_due_idx on :schema.schedules (tenant_id, next_run_at) where not paused;
`
