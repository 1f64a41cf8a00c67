/**
 * Cheaper history writes: the B-tree on job_history (queue, finished_at) becomes a BRIN index on
 * finished_at. Every finished job inserted an entry into that B-tree; the queries it served scan a
 * time window across all tenants (global Stats windows, the rollup of recent history, the purge of old
 * rows in the default partition), and history rows arrive in finished_at order, which is exactly what
 * a BRIN summary of block ranges answers, at a fraction of the write cost and size. Ranges appended
 * since the last summary are read whole by a BRIN scan: autovacuum summarizes them (autosummarize),
 * and so does Maintenance's rollup task before each run, for installations without autovacuum.
 */
export default /* sql */ `
drop index :schema.job_history_finished_idx;
create index job_history_finished_brin on :schema.job_history using brin (finished_at) with (autosummarize = on);
`
