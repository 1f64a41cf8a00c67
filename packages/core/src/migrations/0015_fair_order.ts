/**
 * The fair order completed (issue 18): priority orders a tenant's own jobs only.
 *
 * Before, jobs_claim_idx was (queue, priority desc, vt) and both the claim and fair_clock_advance()
 * took the head of a queue by priority first, so a tenant pushing priority 1 went ahead of every other
 * tenant. Now a pending job's vt is its tenant's "slot" in the queue's fair order, and priority only
 * decides which of the tenant's own jobs fills a slot:
 * - jobs_claim_idx (queue, vt): the slots, lowest first; fair_clock_advance() reads the queue's head
 *   from it (same SET enable_seqscan = off as 0008, which CREATE OR REPLACE would otherwise drop).
 * - jobs_tenant_claim_idx (tenant_id, queue, priority desc, vt): a tenant's own order in a queue,
 *   used by the claim to fill the tenant's slots, and by the Worker to find tenants with work.
 * - jobs_tenant_due_idx (tenant_id, run_at) of scheduled jobs: the Scheduler finds tenants with due
 *   jobs by a skip-scan (a tenant's first entry is its earliest run_at) and promotes an equal part of
 *   each one's due jobs, so one tenant's million jobs due at one instant do not hold back the others.
 *
 * Cost on a big installation: both CREATE INDEX read the live table under a SHARE lock (pushes wait,
 * claims go on); the live table only holds unfinished jobs.
 */
export default /* sql */ `
drop index :schema.jobs_claim_idx;
create index jobs_claim_idx on :schema.jobs (queue, vt) where state = 'pending';
create index jobs_tenant_claim_idx on :schema.jobs (tenant_id, queue, priority desc, vt) where state = 'pending';
create index jobs_tenant_due_idx on :schema.jobs (tenant_id, run_at) where state = 'scheduled';

create or replace function :schema.fair_clock_advance(p_tenant text, p_queue text, p_n bigint) returns bigint
language plpgsql security definer set search_path = pg_catalog, pg_temp set enable_seqscan = off as $fn$
declare
  v_head bigint;
  v_last bigint;
begin
  -- The head is the lowest slot of the queue, whatever its priority: priority never moves a tenant's
  -- clock, so it cannot move the tenant ahead of others.
  select j.vt into v_head from :schema.jobs j
   where j.queue = p_queue and j.state = 'pending'
   order by j.vt limit 1;
  if v_head is null then
    -- Nothing pending: the newest value handed out in this queue is where claiming stopped.
    select c.last_vt into v_head from :schema.queue_clocks c where c.queue = p_queue order by c.last_vt desc limit 1;
  else
    v_head := v_head - 1;
  end if;
  insert into :schema.queue_clocks as c (tenant_id, queue, last_vt)
  values (p_tenant, p_queue, coalesce(v_head, 0) + p_n)
  on conflict (tenant_id, queue) do update set last_vt = greatest(c.last_vt, coalesce(v_head, 0)) + p_n
  returning c.last_vt into v_last;
  return v_last;
end
$fn$;
`
