import pg from 'pg'
import { randomUUID } from 'node:crypto'
import { tenantToken } from './isolated.js'

export interface PushOptions {
  type?: string
  payload?: Buffer | null
  target?: unknown
  priority?: number
  runAt?: Date | null
  maxAttempts?: number
  retryPolicy?: unknown
  keys?: (string | null)[]
}

/** Pushes `n` jobs for one tenant through the SQL function push_jobs(), for tests that must not depend on @pgqueue/producer. */
export async function pushJobs(pool: pg.Pool, schema: string, tenant: string, queue: string, n: number, o: PushOptions = {}): Promise<string[]> {
  const ids: string[] = []
  for (let start = 0; start < n; start += 1000) {
    const m = Math.min(1000, n - start)
    const chunk = Array.from({ length: m }, () => randomUUID())
    ids.push(...chunk)
    const fill = <T>(v: T) => Array(m).fill(v) as T[]
    await pool.query(
      `select * from "${schema}".push_jobs($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
      [
        tenant, chunk, fill(queue), fill(o.type ?? 'work'), o.keys?.slice(start, start + m) ?? fill(null),
        fill(o.payload ?? null), fill(o.payload ? 'application/octet-stream' : null),
        fill(o.target === undefined ? null : JSON.stringify(o.target)), fill(o.priority ?? 0), fill(o.runAt ?? null),
        fill(o.maxAttempts ?? 5), fill(o.retryPolicy === undefined ? null : JSON.stringify(o.retryPolicy)), fill(null), fill(null),
      ],
    )
  }
  return ids
}

/** Counts rows by state in history and live jobs. */
export async function counts(admin: pg.Pool, schema: string): Promise<Record<string, number>> {
  const { rows } = await admin.query(
    `select 'h_' || state as k, count(*)::int as n from "${schema}".job_history group by state
     union all select 'j_' || state, count(*)::int from "${schema}".jobs group by state`,
  )
  return Object.fromEntries(rows.map((r) => [r.k, r.n]))
}

/**
 * Runs `fn` in one transaction as `pool`'s login, signed in as `tenant` with the test file's tenant secret
 * (or with no tenant), then rolls back.
 */
export async function inTenantTx<T>(pool: pg.Pool, tenant: string | null, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const c = await pool.connect()
  try {
    await c.query('begin')
    if (tenant !== null) {
      await c.query(`select set_config('pgqueue.tenant', $1, true), set_config('pgqueue.tenant_token', $2, true)`, [tenant, tenantToken(tenant)])
    }
    return await fn(c)
  } finally {
    await c.query('rollback').catch(() => {})
    c.release()
  }
}
