-- The claim index gets the job id as a last key (issue 19, 1,000,000 pending over 10,000 tenants).
--
-- A claim walked jobs_claim_idx (queue, vt) from its lowest entry. Every job it leases leaves an
-- entry behind there (the pending row version is dead once the claim commits) until VACUUM removes
-- it. An index scan marks such an entry dead, so that later scans skip it without reading the heap,
-- only once the claim is older than every snapshot of the database; and a snapshot's xmin is the
-- oldest transaction id running in any database of the server. So one transaction that holds an id,
-- open in another database, keeps the entries left behind unmarked, and each claim read the heap row
-- of every job claimed since that transaction began: about 100,000 buffers for a claim of 100 after
-- 100,000 jobs, and throughput fell as the backlog was worked off. At 10,000 tenants the fair order
-- also gives 10,000 jobs the same vt (one slot a tenant), so a claim could not resume after the last
-- one by vt alone.
--
-- With the id after vt, (vt, id) is a position in the fair order the Worker can resume from: it
-- starts the next claim at the lowest (vt, id) it claimed last (see jobClaimMany and the Worker's
-- claim loop, which still walks from the lowest entry now and then for jobs that went back below),
-- so it steps over its own last claim only, however many dead entries lie below. The order among jobs of one vt is
-- now the order of their ids (uuid v7, the time of the push) instead of their place in the heap;
-- either way one slot a tenant. fair_clock_advance() still reads a queue's head from this index (a
-- prefix of the key).
--
-- Cost on a big installation: CREATE INDEX reads the live table under a SHARE lock (pushes wait,
-- claims go on); the live table only holds unfinished jobs. Keys are unique now, so the index is no
-- longer deduplicated: about 50 bytes a pending job instead of about 7.
create index jobs_claim_keyset_idx on :schema.jobs (queue, vt, id) where state = 'pending';
drop index :schema.jobs_claim_idx;
alter index :schema.jobs_claim_keyset_idx rename to jobs_claim_idx;
