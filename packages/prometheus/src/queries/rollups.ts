import { sql, type Kysely } from 'kysely'
import { quoteIdent } from '@pgqueue/core/internal'

/** Minute rollup rows of one queue, merged, from the watermark last read up to the current one. */
export interface RollupMinuteRow {
  queue: string
  completed: number
  failed: number
  cancelled: number
  wait_hist: number[]
  run_hist: number[]
}

/**
 * The rollup watermark (every job finished before it is in the rollups) and, when `from` is given,
 * the minute rows in [from, watermark): what finished since the last scrape. One statement. Minute rows
 * before the watermark are final, so each is read exactly once across scrapes.
 */
export async function rollupMinutesSince(db: Kysely<any>, schema: string, from: Date | null): Promise<{ watermark: Date | null; rows: RollupMinuteRow[] }> {
  const s = quoteIdent(schema)
  const { rows } = await sql<RollupMinuteRow & { watermark: Date | null }>`
    with state as (select rolled_up_to from ${sql.raw(`${s}.stats_rollup_state`)})
    select (select rolled_up_to from state) as watermark, m.queue, m.completed, m.failed, m.cancelled, m.wait_hist, m.run_hist
      from (select 1) one
      left join ${sql.raw(`${s}.history_rollup_minutes`)} m
        on ${from === null ? sql`false` : sql`m.bucket >= ${from} and m.bucket < (select rolled_up_to from state)`}`.execute(db)
  const watermark = rows[0]?.watermark ?? null
  return { watermark, rows: rows.filter((r) => r.queue !== null) }
}
