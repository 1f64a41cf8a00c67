-- Stats count jobs of flows that wait for their parents (state 'waiting', migration 19) per queue.
-- Global Stats read Maintenance's live_counts snapshot, so it gains the column; a constant default
-- rewrites nothing, and the next snapshot fills it in.
alter table :schema.live_counts add column waiting integer not null default 0;
