
alter table :schema.jobs
  add constraint jobs_tenant_id_bytes check (octet_length(tenant_id) between 1 and 256),
  add constraint jobs_queue_bytes check (octet_length(queue) between 1 and 128),
  add constraint jobs_type_bytes check (octet_length(type) between 1 and 128),
  add constraint jobs_key_bytes check (octet_length(key) between 1 and 512),
  add constraint jobs_payload_type_bytes check (octet_length(payload_type) between 1 and 255),
  add constraint jobs_payload_bytes check (octet_length(payload) <= 67108864),
  add constraint jobs_target_size check (pg_column_size(target) <= 8388608),
  add constraint jobs_retry_policy_size check (pg_column_size(retry_policy) <= 8192),
  add constraint jobs_priority_range check (priority between -1000000 and 1000000),
  add constraint jobs_max_attempts_range check (max_attempts between 1 and 1000),
  add constraint jobs_run_at_range check (run_at between '0001-01-01 00:00:00+00' and '9999-12-31 23:59:59.999999+00'),
  add constraint jobs_created_at_range check (created_at between '0001-01-01 00:00:00+00' and '9999-12-31 23:59:59.999999+00'),
  add constraint jobs_updated_at_range check (updated_at between '0001-01-01 00:00:00+00' and '9999-12-31 23:59:59.999999+00'),
  add constraint jobs_started_at_range check (started_at between '0001-01-01 00:00:00+00' and '9999-12-31 23:59:59.999999+00'),
  add constraint jobs_lease_expires_at_range check (lease_expires_at between '0001-01-01 00:00:00+00' and '9999-12-31 23:59:59.999999+00');

alter table :schema.job_history
  add constraint job_history_tenant_id_bytes check (octet_length(tenant_id) between 1 and 256),
  add constraint job_history_queue_bytes check (octet_length(queue) between 1 and 128),
  add constraint job_history_type_bytes check (octet_length(type) between 1 and 128),
  add constraint job_history_key_bytes check (octet_length(key) between 1 and 512),
  add constraint job_history_payload_type_bytes check (octet_length(payload_type) between 1 and 255),
  add constraint job_history_result_type_bytes check (octet_length(result_type) between 1 and 255),
  add constraint job_history_payload_bytes check (octet_length(payload) <= 67108864),
  add constraint job_history_result_bytes check (octet_length(result) <= 67108864),
  add constraint job_history_target_size check (pg_column_size(target) <= 8388608),
  add constraint job_history_error_size check (pg_column_size(error) <= 8388608),
  add constraint job_history_priority_range check (priority between -1000000 and 1000000),
  add constraint job_history_max_attempts_range check (max_attempts between 1 and 1000),
  add constraint job_history_created_at_range check (created_at between '0001-01-01 00:00:00+00' and '9999-12-31 23:59:59.999999+00'),
  add constraint job_history_run_at_range check (run_at between '0001-01-01 00:00:00+00' and '9999-12-31 23:59:59.999999+00'),
  add constraint job_history_started_at_range check (started_at between '0001-01-01 00:00:00+00' and '9999-12-31 23:59:59.999999+00'),
  add constraint job_history_finished_at_range check (finished_at between '0001-01-01 00:00:00+00' and '9999-12-31 23:59:59.999999+00');

alter table :schema.queues
  add constraint queues_tenant_id_bytes check (octet_length(tenant_id) between 1 and 256),
  add constraint queues_queue_bytes check (octet_length(queue) between 1 and 128),
  add constraint queues_display_name_bytes check (octet_length(display_name) between 1 and 256),
  add constraint queues_retry_policy_size check (pg_column_size(retry_policy) <= 8192),
  add constraint queues_max_concurrency_range check (max_concurrency between 1 and 1000000),
  add constraint queues_created_at_range check (created_at between '0001-01-01 00:00:00+00' and '9999-12-31 23:59:59.999999+00'),
  add constraint queues_updated_at_range check (updated_at between '0001-01-01 00:00:00+00' and '9999-12-31 23:59:59.999999+00');

alter table :schema.schedules
  add constraint schedules_tenant_id_bytes check (octet_length(tenant_id) between 1 and 256),
  add constraint schedules_key_bytes check (octet_length(key) between 1 and 512),
  add constraint schedules_queue_bytes check (octet_length(queue) between 1 and 128),
  add constraint schedules_type_bytes check (octet_length(type) between 1 and 128),
  add constraint schedules_payload_type_bytes check (octet_length(payload_type) between 1 and 255),
  add constraint schedules_cron_bytes check (octet_length(cron) between 1 and 1024),
  add constraint schedules_timezone_bytes check (octet_length(timezone) between 1 and 128),
  add constraint schedules_payload_bytes check (octet_length(payload) <= 67108864),
  add constraint schedules_target_size check (pg_column_size(target) <= 8388608),
  add constraint schedules_retry_policy_size check (pg_column_size(retry_policy) <= 8192),
  add constraint schedules_priority_range check (priority between -1000000 and 1000000),
  add constraint schedules_every_ms_range check (every_ms between 1 and 316224000000),
  add constraint schedules_anchor_at_range check (anchor_at between '0001-01-01 00:00:00+00' and '9999-12-31 23:59:59.999999+00'),
  add constraint schedules_next_run_at_range check (next_run_at between '0001-01-01 00:00:00+00' and '9999-12-31 23:59:59.999999+00'),
  add constraint schedules_last_run_at_range check (last_run_at between '0001-01-01 00:00:00+00' and '9999-12-31 23:59:59.999999+00'),
  add constraint schedules_created_at_range check (created_at between '0001-01-01 00:00:00+00' and '9999-12-31 23:59:59.999999+00'),
  add constraint schedules_updated_at_range check (updated_at between '0001-01-01 00:00:00+00' and '9999-12-31 23:59:59.999999+00');

alter table :schema.worker_metadata
  add constraint worker_metadata_tenant_id_bytes check (octet_length(tenant_id) between 1 and 256),
  add constraint worker_metadata_key_bytes check (octet_length(key) between 1 and 512),
  add constraint worker_metadata_value_size check (pg_column_size(value) <= 8388608),
  add constraint worker_metadata_updated_at_range check (updated_at between '0001-01-01 00:00:00+00' and '9999-12-31 23:59:59.999999+00');

-- One row per coordinated task; a transaction holds a task by locking its row. No grants: only the
-- owner (the admin that runs Maintenance and migrations) may lock these rows.
create table :schema.locks (
  name text primary key
);
insert into :schema.locks (name) values
  ('partitions'), ('maintenance:rollup'), ('maintenance:liveCounts'), ('maintenance:nodes'), ('maintenance:leases');
