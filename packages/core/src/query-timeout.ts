import type pg from 'pg'
import { PgQueueQueryTimeoutError } from './errors.js'

const armed = new WeakSet<pg.ClientBase>()

/**
 * Destroys a client's socket without a goodbye to the server: statements in flight reject and the
 * client is no longer queryable (a pool drops it when it is released). For a peer that may be
 * unreachable, where end() would wait for TCP to give up.
 */
export function cutSocket(client: pg.ClientBase): void {
  ;(client as unknown as { connection?: { stream?: { destroy?: () => void } } }).connection?.stream?.destroy?.()
}

/**
 * Gives every statement on `client` a client-side deadline. A silent network partition (no RST) leaves
 * a statement waiting for minutes, since TCP keepalive probes take that long to give up. pg's own
 * query_timeout rejects the query but keeps the connection with the statement still outstanding, so
 * the next statement on that client queues behind it; here the socket is destroyed instead, the
 * statement rejects with PgQueueQueryTimeoutError, and the pool drops the client when it is released
 * (it is no longer queryable). Server-side statement_timeout cannot help: the server may be unreachable.
 */
export function armQueryTimeout(client: pg.ClientBase, timeoutMs: number): void {
  if (armed.has(client)) return
  armed.add(client)
  const original = client.query.bind(client) as (...args: unknown[]) => unknown
  ;(client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
    // Submittables (cursors, streams) manage their own lifetime.
    if (typeof (args[0] as { submit?: unknown } | null)?.submit === 'function') return original(...args)
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      cutSocket(client)
    }, timeoutMs)
    const last = args.length - 1
    if (typeof args[last] === 'function') {
      const callback = args[last] as (err: unknown, res?: unknown) => void
      args[last] = (err: unknown, res?: unknown) => {
        clearTimeout(timer)
        callback(timedOut && err ? new PgQueueQueryTimeoutError(timeoutMs) : err, res)
      }
      return original(...args)
    }
    return (original(...args) as Promise<unknown>).then(
      (res) => {
        clearTimeout(timer)
        return res
      },
      (err: unknown) => {
        clearTimeout(timer)
        throw timedOut ? new PgQueueQueryTimeoutError(timeoutMs) : err
      },
    )
  }
}
