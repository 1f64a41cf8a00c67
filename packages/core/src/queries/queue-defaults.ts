import type pg from 'pg'
import { quoteIdent } from '../options.js'
import { validateRetryPolicy, type RetryPolicy } from '../retry-policy.js'
import { LIMITS, validateName } from '../validate.js'

/** Anything that runs a query: a pool, a pool client or a client. */
type Queryable = Pick<pg.Pool, 'query'>

/** An operator's default for one queue, for every tenant. */
export interface QueueDefault {
  queue: string
  /** Used by a job that names no policy when its tenant's queue names none either. */
  retryPolicy: RetryPolicy
}

/**
 * Sets the retry policy a queue's jobs get in every tenant when neither the job nor the tenant's own
 * queue configuration names one (the order is: job, tenant's queue, this, DEFAULT_RETRY_POLICY). Its
 * maxAttempts applies to jobs pushed from now on; its delays to every failure from now on (Workers
 * cache policies for up to 10 s). Operators only: needs the worker role or the schema owner.
 */
export async function queueDefaultSet(db: Queryable, p: { schema: string; queue: string; retryPolicy: RetryPolicy }): Promise<void> {
  const queue = validateName('queue', p.queue, LIMITS.queueName)
  const policy = validateRetryPolicy(p.retryPolicy)
  await db.query(
    `insert into ${quoteIdent(p.schema)}.queue_defaults (queue, retry_policy) values ($1, $2)
     on conflict (queue) do update set retry_policy = excluded.retry_policy, updated_at = now()`,
    [queue, JSON.stringify(policy)],
  )
}

/** Removes a queue's default. Returns whether one was set. */
export async function queueDefaultDelete(db: Queryable, p: { schema: string; queue: string }): Promise<boolean> {
  const queue = validateName('queue', p.queue, LIMITS.queueName)
  const { rowCount } = await db.query(`delete from ${quoteIdent(p.schema)}.queue_defaults where queue = $1`, [queue])
  return (rowCount ?? 0) > 0
}

/** Every queue default, ordered by queue. */
export async function queueDefaultList(db: Queryable, p: { schema: string }): Promise<QueueDefault[]> {
  const { rows } = await db.query<{ queue: string; retry_policy: RetryPolicy }>(
    `select queue, retry_policy from ${quoteIdent(p.schema)}.queue_defaults order by queue`,
  )
  return rows.map((r) => ({ queue: r.queue, retryPolicy: r.retry_policy }))
}
