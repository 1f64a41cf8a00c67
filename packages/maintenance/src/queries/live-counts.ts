import { sql, type Kysely } from 'kysely'
import { quoteIdent, type Database } from '@pgqueue/core/internal'

/**
 * Replaces the live_counts snapshot with one scan of the live table (all tenants) and stamps the time
 * in stats_rollup_state. The counts follow Stats' exact query (jobsCountByQueue in @pgqueue/stats):
 * due scheduled jobs count as pending. Readers see the old snapshot or the new one, never a mix.
 * Returns the number of queues in the snapshot.
 */
export async function liveCountsRefresh(trx: Kysely<Database>, p: { schema: string }): Promise<number> {
  const { schema } = p
  const s = quoteIdent(schema)
  const due = sql`(state in ('pending', 'held') or (state = 'scheduled' and run_at <= now()))`
  await sql`delete from ${sql.raw(`${s}.live_counts`)}`.execute(trx)
  const res = await sql`
    insert into ${sql.raw(`${s}.live_counts`)} (queue, pending, scheduled, running, retrying, waiting, oldest_pending_run_at)
    select queue,
           (count(*) filter (where ${due}))::int,
           (count(*) filter (where state = 'scheduled' and run_at > now()))::int,
           (count(*) filter (where state = 'running'))::int,
           (count(*) filter (where state <> 'running' and attempt > 0))::int,
           (count(*) filter (where state = 'waiting'))::int,
           min(run_at) filter (where ${due})
      from ${sql.raw(`${s}.jobs`)}
     group by queue`.execute(trx)
  await sql`update ${sql.raw(`${s}.stats_rollup_state`)} set live_counts_at = now(), updated_at = now()`.execute(trx)
  return Number(res.numAffectedRows ?? 0n)
}
