/**
 * A lease owner is set exactly while a job runs. Workers rely on it: their completion and heartbeat
 * statements match rows by primary key and lease owner only, because a `state = 'running'` condition
 * lets the planner walk every running job of the node through jobs_lease_idx for each input row.
 */
export default /* sql */ `
alter table :schema.jobs add constraint jobs_lease_owner_iff_running check ((lease_owner is not null) = (state = 'running'));
`
