import type pg from 'pg'
import { PgQueueValidationError } from '../errors.js'
import { quoteIdent } from '../options.js'
import { LIMITS, validateName } from '../validate.js'

/** Anything that runs a query: a pool, a pool client or a client. */
type Queryable = Pick<pg.Pool, 'query'>

/** Bounds of a token bucket and of a job's cost (migration 18 checks the same). */
export const RATE_LIMIT_RANGE = Object.freeze({
  /** Tokens per second. */
  rate: { min: 0.001, max: 1_000_000 },
  /** Burst, in tokens: an integer. */
  capacity: { min: 1, max: 1_000_000 },
  /** Tokens one job takes: an integer. */
  cost: { min: 1, max: 1_000_000 },
})

/** One token bucket: a tenant's in one queue, or (tenantId null) the queue's, shared by every tenant. */
export interface RateLimit {
  tenantId: string | null
  queue: string
  /** Tokens the bucket holds when full: the burst. */
  capacity: number
  /** Tokens added per second. */
  ratePerSec: number
}

/** A bucket as it stands now: its limit and the tokens it holds (refilled to this instant). */
export interface RateLimitState extends RateLimit {
  tokens: number
}

/** A finite rate within RATE_LIMIT_RANGE.rate. */
export function validateRate(value: unknown, field = 'ratePerSec'): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new PgQueueValidationError(field, 'must be a finite number', value)
  const { min, max } = RATE_LIMIT_RANGE.rate
  if (value < min || value > max) throw new PgQueueValidationError(field, `must be between ${min} and ${max} per second`, value)
  return value
}

/** An integer within RATE_LIMIT_RANGE.capacity. */
export function validateCapacity(value: unknown, field = 'capacity'): number {
  const { min, max } = RATE_LIMIT_RANGE.capacity
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new PgQueueValidationError(field, `must be an integer between ${min} and ${max}`, value)
  }
  return value
}

/** A job's cost: undefined is 1, else an integer within RATE_LIMIT_RANGE.cost. */
export function validateCost(value: unknown, field = 'cost'): number {
  if (value === undefined) return 1
  const { min, max } = RATE_LIMIT_RANGE.cost
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new PgQueueValidationError(field, `must be an integer between ${min} and ${max}`, value)
  }
  return value
}

function target(p: { tenantId?: unknown; queue: unknown }): { tenantId: string; queue: string } {
  const queue = validateName('queue', p.queue, LIMITS.queueName)
  // '' in the table is the queue-wide bucket; a real tenant id is never empty.
  const tenantId = p.tenantId === undefined || p.tenantId === null ? '' : validateName('tenantId', p.tenantId, LIMITS.tenantId)
  return { tenantId, queue }
}

/**
 * Sets (or changes) a token bucket: a tenant's in one queue, or with `tenantId` null the queue's own,
 * shared by every tenant (one external API key for all). Jobs take their `cost` in tokens (push option,
 * default 1) when the Scheduler releases them; a tenant over its limit waits while others go on.
 * Takes effect at once, no restart: a new limit starts full (the burst runs at once) and parks the
 * pair's (or queue's) pending jobs in held, so the limit applies to the backlog too; a changed limit
 * first refills at the old rate up to now (capped as the Scheduler caps it, see migration 18),
 * then keeps its tokens (at most the new capacity).
 * Operators only: needs the worker role or the schema owner (a tenant's user role may neither read
 * nor write limits). Invalid input throws PgQueueValidationError and writes nothing.
 */
export async function rateLimitSet(
  db: Queryable,
  p: { schema: string; tenantId?: string | null; queue: string; capacity: number; ratePerSec: number },
): Promise<void> {
  const { tenantId, queue } = target(p)
  const capacity = validateCapacity(p.capacity)
  const rate = validateRate(p.ratePerSec)
  const s = quoteIdent(p.schema)
  // One statement, so the limit and the parking of the backlog commit together. Parking only when the
  // limit is new: under an existing one, the pair's jobs already go through held.
  await db.query(
    `with up as (
       insert into ${s}.rate_limits as r (tenant_id, queue, capacity, rate, tokens, refilled_at)
       values ($1::text, $2::text, $3::integer, $4::float8, $3::integer, clock_timestamp())
       on conflict (tenant_id, queue) do update
          set tokens = greatest(0, least(excluded.capacity - r.unclaimed,
                             r.tokens + r.rate * greatest(0, extract(epoch from clock_timestamp() - r.refilled_at)))),
              refilled_at = greatest(r.refilled_at, clock_timestamp()),
              capacity = excluded.capacity, rate = excluded.rate, updated_at = now()
       returning (r.xmax = 0) as created
     )
     update ${s}.jobs j set state = 'held', vt = null, updated_at = now()
      where j.queue = $2::text and j.state = 'pending' and ($1::text = '' or j.tenant_id = $1::text)
        and (select created from up)`,
    [tenantId, queue, capacity, rate],
  )
}

/**
 * Removes a token bucket (the pair or queue runs unlimited again; its held jobs are released by the
 * Scheduler's next rounds). Returns whether one was set.
 */
export async function rateLimitDelete(db: Queryable, p: { schema: string; tenantId?: string | null; queue: string }): Promise<boolean> {
  const { tenantId, queue } = target(p)
  const { rowCount } = await db.query(`delete from ${quoteIdent(p.schema)}.rate_limits where tenant_id = $1 and queue = $2`, [tenantId, queue])
  return (rowCount ?? 0) > 0
}

/**
 * The buckets set, optionally of one tenant (its own and not the queue-wide ones), ordered by queue
 * then tenant (queue-wide first), with the tokens each holds now (refilled to this instant, read only).
 */
export async function rateLimitList(db: Queryable, p: { schema: string; tenantId?: string }): Promise<RateLimitState[]> {
  const tenantId = p.tenantId === undefined ? null : validateName('tenantId', p.tenantId, LIMITS.tenantId)
  const { rows } = await db.query<{ tenant_id: string; queue: string; capacity: number; rate: number; tokens: number }>(
    `select tenant_id, queue, capacity, rate,
            greatest(0, least(capacity - unclaimed, tokens + rate * greatest(0, extract(epoch from clock_timestamp() - refilled_at))))::float8 as tokens
       from ${quoteIdent(p.schema)}.rate_limits
      where $1::text is null or tenant_id = $1 order by queue, tenant_id`,
    [tenantId],
  )
  return rows.map((r) => ({ tenantId: r.tenant_id === '' ? null : r.tenant_id, queue: r.queue, capacity: r.capacity, ratePerSec: r.rate, tokens: r.tokens }))
}
