import type pg from 'pg'
import { PgQueueValidationError } from '../errors.js'
import { quoteIdent } from '../options.js'
import { LIMITS, validateName } from '../validate.js'

/** Anything that runs a query: a pool, a pool client or a client. */
type Queryable = Pick<pg.Pool, 'query'>

/** Weights an operator may give (migration 15 checks the same range). */
export const WEIGHT_RANGE = Object.freeze({ min: 0.001, max: 1000 })

/** One weight: a tenant's (queue null: every queue without its own) or a tenant's in one queue. */
export interface FairWeight {
  tenantId: string
  queue: string | null
  weight: number
}

/** A finite number within WEIGHT_RANGE. */
export function validateWeight(value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new PgQueueValidationError('weight', 'must be a finite number', value)
  if (value < WEIGHT_RANGE.min || value > WEIGHT_RANGE.max) {
    throw new PgQueueValidationError('weight', `must be between ${WEIGHT_RANGE.min} and ${WEIGHT_RANGE.max}`, value)
  }
  return value
}

function target(p: { tenantId: unknown; queue?: unknown }): { tenantId: string; queue: string } {
  const tenantId = validateName('tenantId', p.tenantId, LIMITS.tenantId)
  const queue = p.queue === undefined || p.queue === null ? '' : validateName('queue', p.queue, LIMITS.queueName)
  return { tenantId, queue }
}

/**
 * Sets the weight of a tenant (or of a tenant in one queue, which wins over the tenant's): backlogged
 * tenants of a queue are served in proportion to their weights. Applies to jobs stamped from now on
 * (pushed, promoted, released); jobs already pending keep their place. Operators only: needs the
 * worker role or the schema owner (a tenant's user role can neither read nor write weights).
 */
export async function fairWeightSet(db: Queryable, p: { schema: string; tenantId: string; queue?: string | null; weight: number }): Promise<void> {
  const { tenantId, queue } = target(p)
  const weight = validateWeight(p.weight)
  await db.query(
    `insert into ${quoteIdent(p.schema)}.fair_weights (tenant_id, queue, weight) values ($1, $2, $3)
     on conflict (tenant_id, queue) do update set weight = excluded.weight, updated_at = now()`,
    [tenantId, queue, weight],
  )
}

/** Removes a weight (back to 1, or to the tenant's own weight for a queue's). Returns whether one was set. */
export async function fairWeightDelete(db: Queryable, p: { schema: string; tenantId: string; queue?: string | null }): Promise<boolean> {
  const { tenantId, queue } = target(p)
  const { rowCount } = await db.query(`delete from ${quoteIdent(p.schema)}.fair_weights where tenant_id = $1 and queue = $2`, [tenantId, queue])
  return (rowCount ?? 0) > 0
}

/** The weights set, optionally of one tenant, ordered by tenant and queue. */
export async function fairWeightList(db: Queryable, p: { schema: string; tenantId?: string }): Promise<FairWeight[]> {
  const tenantId = p.tenantId === undefined ? null : validateName('tenantId', p.tenantId, LIMITS.tenantId)
  const { rows } = await db.query<{ tenant_id: string; queue: string; weight: number }>(
    `select tenant_id, queue, weight from ${quoteIdent(p.schema)}.fair_weights
      where $1::text is null or tenant_id = $1 order by tenant_id, queue`,
    [tenantId],
  )
  return rows.map((r) => ({ tenantId: r.tenant_id, queue: r.queue === '' ? null : r.queue, weight: r.weight }))
}
