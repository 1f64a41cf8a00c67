
revoke update (state, vt, run_at) on :schema.jobs from :user_role;

-- Moves the pending jobs of one (tenant, queue) to 'held' and returns how many moved. The caller's
-- transaction must already be scoped to that tenant (set_config('pgqueue.tenant', t, true)).
create function :schema.hold_jobs(p_tenant text, p_queue text) returns integer
language plpgsql security definer set search_path = pg_catalog, pg_temp as $fn$
declare
  v_current text := nullif(current_setting('pgqueue.tenant', true), '');
  v_moved integer;
begin
  if p_tenant is null or p_tenant = '' or v_current is distinct from p_tenant then
    raise exception 'pgqueue: hold_jobs needs a transaction scoped to its tenant' using errcode = '42501';
  end if;
  update :schema.jobs set state = 'held', vt = null, updated_at = now()
   where tenant_id = p_tenant and queue = p_queue and state = 'pending';
  get diagnostics v_moved = row_count;
  return v_moved;
end
$fn$;

revoke all on function :schema.hold_jobs(text, text) from public;
grant execute on function :schema.hold_jobs(text, text) to :user_role, :worker_role;
