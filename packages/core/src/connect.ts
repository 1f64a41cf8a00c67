import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import type { Database } from './database.js'
import { PgQueueValidationError } from './errors.js'
import { armQueryTimeout, cutSocket } from './query-timeout.js'

/** A connection string or a pg.Pool the caller owns. */
export type Connectable = string | pg.Pool

export interface ConnectOptions {
  /** Pool size when a URL is given. Default 10. */
  max?: number
  /** application_name reported to PostgreSQL. Default 'pgqueue'. */
  applicationName?: string
  /** Client-side deadline for every statement on a pool created here: past it the connection is
   *  closed and the statement rejects with PgQueueQueryTimeoutError (see armQueryTimeout). Also the
   *  longest wait for a connection. Default none. A pool passed in keeps its own settings. */
  queryTimeoutMs?: number
}

/** TCP keepalive for every connection pgqueue opens, so a peer that vanished is noticed by the OS. */
export const KEEPALIVE = { keepAlive: true, keepAliveInitialDelayMillis: 10_000 } as const

/** A pool and a Kysely instance over it. `close()` ends the pool only if it was created here. */
export interface Connection {
  pool: pg.Pool
  db: Kysely<Database>
  /** True when the pool was created from a URL here and is ended by close(). */
  ownsPool: boolean
  close(): Promise<void>
  /** Cuts the sockets of every connection of a pool created here, without a goodbye to the server;
   *  statements in flight reject. For a stop that ran out of time on a dead network. */
  destroy(): void
}

/** Opens a pool from a URL, or wraps a pool the caller passed (which close() then leaves open). */
export function connect(target: Connectable, options: ConnectOptions = {}): Connection {
  let pool: pg.Pool
  let ownsPool: boolean
  const q = options.queryTimeoutMs
  if (q !== undefined && (!Number.isInteger(q) || q < 1 || q > 2 ** 31 - 1)) {
    throw new PgQueueValidationError('queryTimeoutMs', 'must be an integer number of milliseconds from 1 to 2147483647', q)
  }
  if (typeof target === 'string') {
    if (target.trim() === '') throw new PgQueueValidationError('url', 'must be a PostgreSQL connection string', target)
    pool = new pg.Pool({
      connectionString: target,
      max: options.max ?? 10,
      application_name: options.applicationName ?? 'pgqueue',
      ...KEEPALIVE,
      // A connection (or a free pool slot) that takes longer than a statement may is as good as lost.
      ...(q === undefined ? {} : { connectionTimeoutMillis: q }),
    })
    ownsPool = true
  } else if (target instanceof pg.Pool || isPoolLike(target)) {
    pool = target
    ownsPool = false
  } else {
    throw new PgQueueValidationError('url', 'must be a connection string or a pg.Pool', target)
  }
  // A client that loses its connection (database restart, pg_terminate_backend) must not crash the
  // process. pg-pool handles 'error' only on idle clients; a checked-out client emits it unhandled, so
  // every client gets a listener (its query in flight still rejects, and the pool discards it).
  if (ownsPool) pool.on('error', () => {})
  const queryTimeoutMs = ownsPool ? options.queryTimeoutMs : undefined
  const clients = new Set<pg.PoolClient>()
  pool.on('connect', (client) => {
    client.on('error', () => {})
    if (queryTimeoutMs !== undefined) armQueryTimeout(client, queryTimeoutMs)
    if (ownsPool) clients.add(client)
  })
  if (ownsPool) pool.on('remove', (client) => clients.delete(client as pg.PoolClient))
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) })
  let closed = false
  return {
    pool,
    db,
    ownsPool,
    async close() {
      if (closed) return
      closed = true
      if (!ownsPool) return
      // Kysely ends the pool only if it ran a query through it; a pool used only directly (pg queries,
      // or handed to other components) would otherwise keep the process alive until its idle timeout.
      await db.destroy()
      if (!pool.ended) await pool.end()
    },
    destroy() {
      if (!ownsPool) return
      for (const client of clients) cutSocket(client)
      clients.clear()
    },
  }
}

function isPoolLike(value: unknown): value is pg.Pool {
  return typeof value === 'object' && value !== null && typeof (value as pg.Pool).connect === 'function' && typeof (value as pg.Pool).query === 'function'
}
