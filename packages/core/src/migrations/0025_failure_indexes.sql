-- The dashboard's failures page and its bulk retry/cancel read only failed and retried jobs, but found
-- them by reading every finished row of the window and every live row. These partial indexes hold only
-- those jobs, so only failures pay for them:
--   job_history_failed_idx, job_history_tenant_failed_idx: one entry each per failed job (history rows
--     are written once); the newest failures of the window, for the operator and for one tenant.
--   job_history_retry_of_idx, jobs_retry_of_idx: one entry per job pushed again by a retry (retry_of
--     never changes); whether a failed job was retried already, without reading the table.
--   jobs_retrying_idx: live jobs carrying a last error, newest first (ids are time-ordered). Its
--     columns never change, so the updates that were HOT (lease renewals, cancel requests) stay HOT;
--     each update of a job with a last error that changes its state adds an entry: 3 per retry attempt
--     (the failure, the promotion when due, the claim; measured in apps/bench/LOG.md).
-- Cost on a big installation: each CREATE INDEX reads the whole table under a SHARE lock (writes wait);
-- on job_history the index is built on every partition in turn, reading all of them although it keeps
-- only failed rows (figures for 10,000,000 finished jobs in apps/bench/LOG.md).
create index job_history_failed_idx on :schema.job_history (finished_at) where state = 'failed';
create index job_history_tenant_failed_idx on :schema.job_history (tenant_id, finished_at) where state = 'failed';
create index job_history_retry_of_idx on :schema.job_history (tenant_id, retry_of) where retry_of is not null;
create index jobs_retry_of_idx on :schema.jobs (tenant_id, retry_of) where retry_of is not null;
create index jobs_retrying_idx on :schema.jobs (id, tenant_id) where last_error is not null;
