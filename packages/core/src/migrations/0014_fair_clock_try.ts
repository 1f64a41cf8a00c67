/**
 * Fair clocks taken without waiting. push_jobs() holds a (tenant, queue) clock row locked until its
 * transaction ends, and a producer may keep that transaction open as long as it likes (transactional
 * enqueue). The Scheduler and the ScheduleRunner serve every tenant, so they must never wait on such a
 * row: they take clocks through these functions, which give up at once when another transaction holds
 * the clock, and leave that tenant's jobs for a later round.
 *
 * - fair_clock_try_lock(tenant, queue): locks the clock row for the rest of the transaction and returns
 *   true, or returns false when another transaction holds it. A missing row is created (at 0, which
 *   fair_clock_advance() treats like no row) so that a later advance in the same transaction has a row
 *   to update instead of an insert that could wait; the only wait is on a row another transaction is
 *   inserting right now, bounded by the function's own lock_timeout, and taken at most once per tenant
 *   and transaction (a transaction-local setting remembers the tenant). Null when no clock row can be
 *   made for the pair at all (a queue name too long to index): a push into it fails on its own, so
 *   the caller can let that one job fail instead of the whole statement.
 * - fair_clock_try_advance(tenant, queue, n): fair_clock_advance() under that lock, or null.
 *
 * SECURITY DEFINER like fair_clock_advance(), so the worker role needs no privilege on queue_clocks.
 * Placeholders as in 0001.
 */
export default /* sql */ `
create function :schema.fair_clock_try_lock(p_tenant text, p_queue text) returns boolean
language plpgsql security definer set search_path = pg_catalog, pg_temp set lock_timeout = '10ms' as $fn$
begin
  perform 1 from :schema.queue_clocks c where c.tenant_id = p_tenant and c.queue = p_queue for update skip locked;
  if found then
    return true;
  end if;
  -- Skipped because it is locked, or not there (as far as this snapshot can tell).
  if exists (select 1 from :schema.queue_clocks c where c.tenant_id = p_tenant and c.queue = p_queue) then
    return false;
  end if;
  -- A tenant that already made this transaction wait for a clock it was creating makes it wait no
  -- more: creating many new queues in an open transaction costs one wait, not one per queue.
  if current_setting('pgqueue.clock_wait_' || md5(p_tenant), true) = 'on' then
    return false;
  end if;
  begin
    insert into :schema.queue_clocks (tenant_id, queue, last_vt) values (p_tenant, p_queue, 0) on conflict do nothing;
  exception
    when lock_not_available then
      -- Another transaction is creating this clock and has not committed.
      perform set_config('pgqueue.clock_wait_' || md5(p_tenant), 'on', true);
      return false;
    when program_limit_exceeded then
      return null;
  end;
  perform 1 from :schema.queue_clocks c where c.tenant_id = p_tenant and c.queue = p_queue for update skip locked;
  return found;
end
$fn$;

create function :schema.fair_clock_try_advance(p_tenant text, p_queue text, p_n bigint) returns bigint
language plpgsql security definer set search_path = pg_catalog, pg_temp as $fn$
begin
  if :schema.fair_clock_try_lock(p_tenant, p_queue) is not true then
    return null;
  end if;
  return :schema.fair_clock_advance(p_tenant, p_queue, p_n);
end
$fn$;

revoke all on function :schema.fair_clock_try_lock(text, text), :schema.fair_clock_try_advance(text, text, bigint) from public;
grant execute on function :schema.fair_clock_try_lock(text, text), :schema.fair_clock_try_advance(text, text, bigint) to :worker_role;
`
