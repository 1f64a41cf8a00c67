-- jobs_state_idx (state, tenant_id, queue) covered every live job, so every pushed job wrote one index
-- entry more than its claim needs: about a fifth of a bulk push's server time (see apps/bench/LOG.md).
-- Pending jobs already have two indexes of their own (jobs_claim_idx, jobs_tenant_claim_idx), which
-- serve every query about them, so the state index now leaves them out. Queries for running, held,
-- scheduled or waiting jobs still match it: the planner proves `state = 'running'` (or an IN list
-- without 'pending') implies `state <> 'pending'`. A claim still writes one entry here (the row turns
-- running), as before. Rebuilding reads the live table once; it holds a lock that blocks pushes and
-- claims for that long (0.6 s for 1,000,000 live jobs measured on a 2-core machine).
drop index :schema.jobs_state_idx;
create index jobs_state_idx on :schema.jobs (state, tenant_id, queue) where state <> 'pending';
