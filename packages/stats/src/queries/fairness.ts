import { sql, type Kysely } from 'kysely'
import { quoteIdent } from '@pgqueue/core/internal'

/** A weight or a back-off row, as the database returns it. */
export interface FairnessRow {
  kind: 'weight' | 'back-off'
  tenant_id: string
  queue: string
  weight: number | null
  until: Date | null
}

/**
 * Operator weights and the back-offs still running (fair_blocks until later), of one tenant or all.
 * Both tables are readable by the worker role and the owner only.
 */
export async function fairnessSettings(db: Kysely<any>, schema: string, p: { tenantId?: string }): Promise<FairnessRow[]> {
  const s = quoteIdent(schema)
  const tenant = p.tenantId === undefined ? sql`true` : sql`tenant_id = ${p.tenantId}`
  const { rows } = await sql<FairnessRow>`
    select 'weight' as kind, tenant_id, queue, weight, null::timestamptz as until
      from ${sql.raw(`${s}.fair_weights`)} where ${tenant}
    union all
    select 'back-off', tenant_id, queue, null, until
      from ${sql.raw(`${s}.fair_blocks`)} where until > now() and ${tenant}
     order by 2, 3, 1`.execute(db)
  return rows
}

/** A token bucket with the tokens it holds now (refilled to this instant, read only). */
export interface RateLimitRow {
  tenant_id: string
  queue: string
  capacity: number
  rate: number
  tokens: number
}

/**
 * Token buckets of one tenant (its own) or all (queue-wide ones have tenant_id ''), with their tokens
 * refilled to now the way the Scheduler refills them (capped at capacity minus the cost the last
 * release left unclaimed). Readable by the worker role and the owner only.
 */
export async function rateLimitsWithTokens(db: Kysely<any>, schema: string, p: { tenantId?: string }): Promise<RateLimitRow[]> {
  const tenant = p.tenantId === undefined ? sql`true` : sql`tenant_id = ${p.tenantId}`
  const { rows } = await sql<RateLimitRow>`
    select tenant_id, queue, capacity, rate,
           greatest(0, least(capacity - unclaimed,
                             tokens + rate * greatest(0, extract(epoch from clock_timestamp() - refilled_at))))::float8 as tokens
      from ${sql.raw(`${quoteIdent(schema)}.rate_limits`)} where ${tenant}
     order by queue, tenant_id`.execute(db)
  return rows
}

/** Jobs finished per tenant since `since` (history; every queue), most first. */
export async function historyCountByTenant(db: Kysely<any>, schema: string, p: { since: Date }): Promise<{ tenant_id: string; jobs: number }[]> {
  const { rows } = await sql<{ tenant_id: string; jobs: number }>`
    select tenant_id, count(*)::int as jobs from ${sql.raw(`${quoteIdent(schema)}.job_history`)}
     where finished_at >= ${p.since}
     group by tenant_id order by 2 desc, 1`.execute(db)
  return rows
}
