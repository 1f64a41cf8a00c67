import type pg from 'pg'

/** Bounds on how long a component's statement may wait for a lock, and run, in ms. */
export interface TransactionTimeouts {
  lockTimeoutMs: number
  statementTimeoutMs: number
}

/**
 * Runs `fn` in a transaction on one pooled client; rolls back on error. No session state is left behind:
 * the timeouts are SET LOCAL, sent with BEGIN in one round trip, so a lock that a tenant holds (or
 * anything else that hangs) costs this transaction at most lockTimeoutMs instead of stalling the loop
 * that serves every tenant.
 */
export async function inTransaction<T>(pool: pg.Pool, timeouts: TransactionTimeouts, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect()
  let broken = false
  try {
    await client.query(beginSql(timeouts))
    const out = await fn(client)
    await client.query('commit')
    return out
  } catch (err) {
    await client.query('rollback').catch(() => {
      broken = true
    })
    throw err
  } finally {
    // A client whose connection failed mid-transaction is dropped instead of returned to the pool.
    client.release(broken ? true : undefined)
  }
}

function beginSql(t: TransactionTimeouts): string {
  // Whole numbers checked by the options; SET takes no bind parameters.
  const lock = Math.trunc(t.lockTimeoutMs)
  const statement = Math.trunc(t.statementTimeoutMs)
  return `begin; set local lock_timeout = ${lock}; set local statement_timeout = ${statement}`
}
