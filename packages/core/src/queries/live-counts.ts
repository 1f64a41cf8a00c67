/**
 * The live counts of the jobs table, in one place for every reader (Stats, Maintenance's live_counts
 * snapshot, the Prometheus collector), so they cannot drift apart. A job is due when pending, held,
 * or scheduled with its run_at passed: Stats count it as pending.
 */
export const LIVE_DUE_SQL = `(state in ('pending', 'held') or (state = 'scheduled' and run_at <= now()))`

/** Select-list items over rows of the jobs table, in this order: pending, scheduled, running, retrying, waiting. */
export const LIVE_COUNTS_SQL = `(count(*) filter (where ${LIVE_DUE_SQL}))::int as pending,
           (count(*) filter (where state = 'scheduled' and run_at > now()))::int as scheduled,
           (count(*) filter (where state = 'running'))::int as running,
           (count(*) filter (where state <> 'running' and attempt > 0))::int as retrying,
           (count(*) filter (where state = 'waiting'))::int as waiting`
