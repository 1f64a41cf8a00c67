import { quoteIdent, type Queryable } from '@pgqueue/core/internal'

/** A job the Scheduler is about to move into the fair order, locked by the current transaction. */
export interface StampInput {
  tenantId: string
  id: string
  queue: string
  priority: number
  runAt: Date
}

/** A due scheduled job, locked, with whether its (tenant, queue) is paused or capped. */
export interface DueRow {
  tenant_id: string
  id: string
  queue: string
  priority: number
  run_at: Date
  throttled: boolean
}

/** A (tenant, queue) pair. */
export interface Pair {
  tenant_id: string
  queue: string
}

/**
 * Locks due scheduled jobs fairly across tenants, leaving out the pairs in `exclude` (their fair clock
 * is held by another transaction this round). Tenants are visited by a recursive skip-scan over
 * jobs_tenant_due_idx (tenant_id, run_at) from `afterTenant`, at most `tenants` of them: one probe per
 * tenant, whose first entry is its earliest run_at, so a tenant with nothing due costs that probe and
 * no more. Each tenant with due jobs gets an equal part of `limit`, its oldest due first (issue 18:
 * oldest first across tenants let one tenant's million jobs due at one instant hold back everyone
 * else's delayed jobs and retries). SKIP LOCKED lets several Schedulers take disjoint slices and never
 * waits on a row a tenant holds. The queues row is joined (not locked) to tell which pairs must go to
 * held (a pair backed off until later, or rate-limited, as well). Also returns the visit's last tenant, how many tenants it visited and how many had due jobs.
 */
export async function jobLockDue(
  db: Queryable,
  p: { schema: string; afterTenant: string; tenants: number; limit: number; exclude: Pair[] },
): Promise<{ rows: DueRow[]; lastTenant: string | null; visited: number; dueTenants: number }> {
  const s = quoteIdent(p.schema)
  const { rows } = await db.query<DueRow & { last_tenant: string | null; visited: number; due_tenants: number }>(
    `with recursive t as (
       (select j.tenant_id, j.run_at from ${s}.jobs j where j.state = 'scheduled' and j.tenant_id > $4
         order by j.tenant_id, j.run_at limit 1)
       union all
       select n.tenant_id, n.run_at from t
        cross join lateral (select j.tenant_id, j.run_at from ${s}.jobs j where j.state = 'scheduled' and j.tenant_id > t.tenant_id
                             order by j.tenant_id, j.run_at limit 1) n
     ),
     visited as materialized (select tenant_id, run_at from t limit $5),
     due as materialized (select tenant_id from visited where run_at <= now()),
     locked as materialized (
       select x.* from due d
        cross join lateral (
          select j.tenant_id, j.id, j.queue, j.priority, j.run_at from ${s}.jobs j
           where j.tenant_id = d.tenant_id and j.state = 'scheduled' and j.run_at <= now()
             and not exists (select 1 from unnest($2::text[], $3::text[]) as e(tenant_id, queue)
                              where e.tenant_id = j.tenant_id and e.queue = j.queue)
           order by j.run_at
           limit ceil($1::numeric / (select count(*) from due))::bigint
           for update skip locked) x
     )
     select l.tenant_id, l.id, l.queue, l.priority, l.run_at,
            coalesce(q.paused or q.max_concurrency is not null, false)
              or exists (select 1 from ${s}.fair_blocks b where b.tenant_id = l.tenant_id and b.queue = l.queue and b.until > now())
              or exists (select 1 from ${s}.rate_limits r where r.queue = l.queue and r.tenant_id in (l.tenant_id, ''))
              as throttled,
            m.last_tenant, m.visited, m.due_tenants
       from (select max(tenant_id) as last_tenant, count(*)::int as visited,
                    (select count(*) from due)::int as due_tenants from visited) m
       left join (locked l left join ${s}.queues q on q.tenant_id = l.tenant_id and q.queue = l.queue) on true`,
    [p.limit, p.exclude.map((x) => x.tenant_id), p.exclude.map((x) => x.queue), p.afterTenant, p.tenants],
  )
  const first = rows[0]
  return {
    rows: rows.filter((r) => r.id !== null).map(({ last_tenant: _l, visited: _v, due_tenants: _d, ...r }) => r),
    lastTenant: first?.last_tenant ?? null,
    visited: first?.visited ?? 0,
    dueTenants: first?.due_tenants ?? 0,
  }
}

/**
 * Moves locked jobs into the fair order: one fair_clock_try_advance(tenant, queue, n) per pair, in
 * (tenant, queue) order (the OFFSET 0 keeps the sorted subquery from being flattened away), then the n
 * jobs of a pair take the n virtual times below the new clock value, one stride apart (the pair's
 * fair_clock_stride(), 1000 / weight), in the order given (priority, then due time). A pair whose clock another transaction holds (a producer's open push) gets null and its
 * jobs are left as they were: nothing here waits on a lock a tenant can hold. Returns how many jobs
 * were stamped and the pairs left out. Joins through unnest arrays, not a CTE of the table:
 * joined to a CTE, the planner chose a hash join over a full scan when one tenant owned the backlog.
 */
export async function jobStampPending(db: Queryable, p: { schema: string; jobs: StampInput[] }): Promise<{ stamped: number; blocked: Pair[] }> {
  if (p.jobs.length === 0) return { stamped: 0, blocked: [] }
  const s = quoteIdent(p.schema)
  const jobs = [...p.jobs].sort((a, b) => b.priority - a.priority || a.runAt.getTime() - b.runAt.getTime())
  const { rows } = await db.query<{ stamped: number; blocked_tenants: string[]; blocked_queues: string[] }>(
    `with input as (
       select * from unnest($1::text[], $2::uuid[], $3::text[]) with ordinality as i(tenant_id, id, queue, ord)
     ),
     clocks as materialized (
       select c.tenant_id, c.queue, c.n, ${s}.fair_clock_try_advance(c.tenant_id, c.queue, c.n) as last_vt,
              ${s}.fair_clock_stride(c.tenant_id, c.queue) as stride
         from (select tenant_id, queue, count(*) as n from input group by tenant_id, queue
                order by tenant_id, queue offset 0) c
     ),
     stamped as (
       select i.tenant_id, i.id,
              c.last_vt - (c.n - row_number() over (partition by i.tenant_id, i.queue order by i.ord)) * c.stride as vt
         from input i join clocks c on c.tenant_id = i.tenant_id and c.queue = i.queue
        where c.last_vt is not null
     ),
     done as (
       update ${s}.jobs j set state = 'pending', vt = st.vt, updated_at = now()
         from stamped st
        where j.tenant_id = st.tenant_id and j.id = st.id
       returning 1
     )
     select (select count(*) from done)::int as stamped,
            coalesce(array_agg(c.tenant_id) filter (where c.last_vt is null), '{}') as blocked_tenants,
            coalesce(array_agg(c.queue) filter (where c.last_vt is null), '{}') as blocked_queues
       from clocks c`,
    [jobs.map((j) => j.tenantId), jobs.map((j) => j.id), jobs.map((j) => j.queue)],
  )
  const r = rows[0]!
  return { stamped: r.stamped, blocked: r.blocked_tenants.map((tenant_id, i) => ({ tenant_id, queue: r.blocked_queues[i]! })) }
}

/** Parks locked jobs of paused or capped pairs in held, where the releaser picks them up. */
export async function jobHoldMany(db: Queryable, p: { schema: string; tenantIds: string[]; ids: string[] }): Promise<number> {
  if (p.ids.length === 0) return 0
  const s = quoteIdent(p.schema)
  const { rowCount } = await db.query(
    `update ${s}.jobs j set state = 'held', vt = null, updated_at = now()
       from unnest($1::text[], $2::uuid[]) as i(tenant_id, id)
      where j.tenant_id = i.tenant_id and j.id = i.id`,
    [p.tenantIds, p.ids],
  )
  return rowCount ?? 0
}

/**
 * (tenant, queue) pairs holding jobs, fair across tenants: up to `tenants` tenants with held jobs after
 * `afterTenant` (a recursive skip-scan over jobs_held_idx, one probe per tenant), and for each the same
 * number of its held pairs, `pairs` divided among the tenants found (at least one), from the queue
 * after the one the caller last visited for it (`afterQueues`; a nested skip-scan, one probe per
 * pair). So a tenant holding jobs in 300 paused queues takes one tenant's part of a round, not 300
 * pairs of it, and every other tenant's pairs are visited in the same round (issue 18). Pairs come
 * ordered by tenant, then queue.
 */
export async function jobListHeldPairs(
  db: Queryable,
  p: { schema: string; afterTenant: string; afterQueues: Map<string, string>; tenants: number; pairs: number },
): Promise<{ tenant_id: string; queue: string }[]> {
  const s = quoteIdent(p.schema)
  const { rows } = await db.query<{ tenant_id: string; queue: string }>(
    `with recursive t as (
       (select tenant_id from ${s}.jobs where state = 'held' and tenant_id > $1 order by tenant_id limit 1)
       union all
       select (select j.tenant_id from ${s}.jobs j where j.state = 'held' and j.tenant_id > t.tenant_id
                order by j.tenant_id limit 1)
         from t where t.tenant_id is not null
     ),
     tenants as materialized (select tenant_id from t where tenant_id is not null limit $2),
     quantum as (select greatest(1, $3 / greatest(1, (select count(*) from tenants))) as k)
     select tn.tenant_id, x.queue from tenants tn
       left join unnest($4::text[], $5::text[]) as c(tenant_id, after) on c.tenant_id = tn.tenant_id
      cross join lateral (
        with recursive qs as (
          (select j.queue from ${s}.jobs j where j.state = 'held' and j.tenant_id = tn.tenant_id
              and j.queue > coalesce(c.after, '') order by j.queue limit 1)
          union all
          select (select j.queue from ${s}.jobs j where j.state = 'held' and j.tenant_id = tn.tenant_id
                     and j.queue > qs.queue order by j.queue limit 1)
            from qs where qs.queue is not null
        )
        select queue from qs where queue is not null limit (select k from quantum)) x
      order by tn.tenant_id, x.queue`,
    [p.afterTenant, p.tenants, p.pairs, [...p.afterQueues.keys()], [...p.afterQueues.values()]],
  )
  return rows
}

/**
 * For pairs this transaction has locked: locks the held jobs that may be released now, at most
 * `perPair` per pair. A paused pair, or one backed off until later (fair_blocks), releases none; a capped pair releases up to max_concurrency minus
 * its pending and running jobs (counted with a LIMIT, so a count costs at most the cap in index
 * entries); an unthrottled pair (unpaused or uncapped since) releases up to `perPair`. A rate-limited
 * pair comes with `limits`: at most n jobs (what its buckets could pay at a cost of 1 each), so a dry
 * bucket locks no rows; the releaser then fits the locked jobs' costs to its buckets. Must run as a
 * statement after the pair locks were taken, so its snapshot sees every release committed before.
 */
export async function jobLockReleasable(
  db: Queryable,
  p: { schema: string; tenantIds: string[]; queues: string[]; perPair: number; limits?: { tenantId: string; queue: string; n: number }[] },
): Promise<(StampInput & { capped: boolean; cost: number })[]> {
  const s = quoteIdent(p.schema)
  const limits = p.limits ?? []
  const { rows } = await db.query<{ tenant_id: string; id: string; queue: string; priority: number; run_at: Date; capped: boolean; cost: number }>(
    `with pairs as (
       select i.tenant_id, i.queue, coalesce(q.paused, false)
                or exists (select 1 from ${s}.fair_blocks b where b.tenant_id = i.tenant_id and b.queue = i.queue and b.until > now())
                as paused,
              q.max_concurrency, l.n as limit_n
         from unnest($1::text[], $2::text[]) as i(tenant_id, queue)
         left join ${s}.queues q on q.tenant_id = i.tenant_id and q.queue = i.queue
         left join unnest($4::text[], $5::text[], $6::int4[]) as l(tenant_id, queue, n) on l.tenant_id = i.tenant_id and l.queue = i.queue
     ),
     room as (
       select pr.tenant_id, pr.queue, pr.max_concurrency is not null as capped,
              case when pr.paused then 0
                   when pr.max_concurrency is null then least($3, coalesce(pr.limit_n, $3))
                   -- Two counts, one per state: each is a range of an index whose predicate names
                   -- that state (jobs_tenant_claim_idx, jobs_state_idx), where one IN list is not.
                   else least($3, coalesce(pr.limit_n, $3), pr.max_concurrency - (
                     select count(*) from (select 1 from ${s}.jobs a
                                            where a.tenant_id = pr.tenant_id and a.queue = pr.queue and a.state = 'pending'
                                            limit pr.max_concurrency) x) - (
                     select count(*) from (select 1 from ${s}.jobs a
                                            where a.tenant_id = pr.tenant_id and a.queue = pr.queue and a.state = 'running'
                                            limit pr.max_concurrency) x))
              end as n
         from pairs pr
     )
     select h.tenant_id, h.id, h.queue, h.priority, h.run_at, r.capped, h.cost
       from room r
      cross join lateral (select j.tenant_id, j.id, j.queue, j.priority, j.run_at, j.cost from ${s}.jobs j
                           where j.tenant_id = r.tenant_id and j.queue = r.queue and j.state = 'held'
                           order by j.priority desc, j.run_at
                           limit greatest(r.n, 0)
                           for update skip locked) h
      where r.n > 0`,
    [p.tenantIds, p.queues, p.perPair, limits.map((l) => l.tenantId), limits.map((l) => l.queue), limits.map((l) => l.n)],
  )
  return rows.map((r) => ({ tenantId: r.tenant_id, id: r.id, queue: r.queue, priority: r.priority, runAt: r.run_at, capped: r.capped, cost: r.cost }))
}

/**
 * Milliseconds until the next scheduled job that is not due yet, or null when there is none. Computed
 * with the database's now(), the clock run_at was written and is compared with, so a host clock that
 * runs ahead or behind changes nothing. Due jobs left behind (a tenant holds their row or clock) are
 * not counted: the next poll retries them, where counting them would make the Scheduler spin.
 */
export async function jobNextDueInMs(db: Queryable, p: { schema: string }): Promise<number | null> {
  const { rows } = await db.query<{ ms: number | null }>(
    `select ceil(extract(epoch from (min(run_at) - now())) * 1000)::float8 as ms
       from ${quoteIdent(p.schema)}.jobs where state = 'scheduled' and run_at > now()`,
  )
  return rows[0]?.ms ?? null
}

/** Wakes idle workers: one empty notification per transaction (payloads name nothing). */
export async function jobNotify(db: Queryable, p: { channel: string }): Promise<void> {
  await db.query(`select pg_notify($1, '')`, [p.channel])
}
