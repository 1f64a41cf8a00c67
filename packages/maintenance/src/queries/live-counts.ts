import { sql, type Kysely } from 'kysely'
import { LIVE_COUNTS_SQL, LIVE_DUE_SQL, quoteIdent, type Database } from '@pgqueue/core/internal'

/**
 * Replaces the live_counts snapshot with one scan of the live table (all tenants) and stamps the time
 * in stats_rollup_state. The counts are Stats' exact ones (LIVE_COUNTS_SQL in core): due scheduled
 * jobs count as pending. Readers see the old snapshot or the new one, never a mix.
 * Returns the number of queues in the snapshot.
 */
export async function liveCountsRefresh(trx: Kysely<Database>, p: { schema: string }): Promise<number> {
  const { schema } = p
  const s = quoteIdent(schema)
  await sql`delete from ${sql.raw(`${s}.live_counts`)}`.execute(trx)
  const res = await sql`
    insert into ${sql.raw(`${s}.live_counts`)} (queue, pending, scheduled, running, retrying, waiting, oldest_pending_run_at)
    select queue, ${sql.raw(LIVE_COUNTS_SQL)},
           min(run_at) filter (where ${sql.raw(LIVE_DUE_SQL)})
      from ${sql.raw(`${s}.jobs`)}
     group by queue`.execute(trx)
  await sql`update ${sql.raw(`${s}.stats_rollup_state`)} set live_counts_at = now(), updated_at = now()`.execute(trx)
  return Number(res.numAffectedRows ?? 0n)
}
