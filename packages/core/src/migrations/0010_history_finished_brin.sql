
drop index :schema.job_history_finished_idx;
create index job_history_finished_brin on :schema.job_history using brin (finished_at) with (autosummarize = on);
