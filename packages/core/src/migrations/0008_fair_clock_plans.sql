
alter function :schema.fair_clock_advance(text, text, bigint) set enable_seqscan = off;
drop index :schema.queue_clocks_queue_idx;
create index queue_clocks_queue_idx on :schema.queue_clocks (queue);
alter table :schema.queue_clocks set (fillfactor = 50);
