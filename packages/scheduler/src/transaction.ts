import type pg from 'pg'

/** Runs `fn` in a transaction on one pooled client; rolls back on error. No session state is left behind. */
export async function inTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect()
  let broken = false
  try {
    await client.query('begin')
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
