/**
 * Keeps a push from getting slower as the backlog grows.
 * - fair_clock_advance() caches its head-of-queue plan from its first calls, when the table is small;
 *   that plan was a sequential scan and sort of every pending job (1.7 ms at 6,000 pending, growing).
 *   Sequential scans are off inside the function, so the plan is always the jobs_claim_idx probe.
 * - queue_clocks no longer indexes last_vt, so advancing a clock is a HOT update (no new index entries
 *   per push for lookups to step over until the next vacuum); the fallback for an empty queue reads
 *   that queue's clocks through an index on queue alone.
 */
export default /* sql */ `
alter function :schema.fair_clock_advance(text, text, bigint) set enable_seqscan = off;
drop index :schema.queue_clocks_queue_idx;
create index queue_clocks_queue_idx on :schema.queue_clocks (queue);
alter table :schema.queue_clocks set (fillfactor = 50);
`
