
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
