
alter table :schema.jobs add constraint jobs_lease_owner_iff_running check ((lease_owner is not null) = (state = 'running'));
