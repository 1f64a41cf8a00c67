/** SQLSTATE classes and codes that say nothing about the data sent: the statement may work as is later. */
const TRANSIENT_CLASSES = ['08', '53', '57', '58']
const TRANSIENT_CODES = new Set(['40001', '40P01', '55P03', '55006', '25P03'])
/** Node's socket errors, as pg passes them on. */
const SOCKET_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNABORTED'])
const CONNECTION_MESSAGE = /connection terminated|connection error|client has encountered a connection error|client was closed|cannot use a pool after calling end|timeout exceeded when trying to connect|not queryable/i

/**
 * True when a failed completion statement should simply be sent again later (database down or
 * restarting, a lost connection, a deadlock or lock timeout, out of connections). Anything else (a
 * data or constraint error, a RangeError building the statement, an error without SQLSTATE) may be
 * caused by what the batch holds, so the batch is split to find the outcome at fault instead.
 */
export function isTransientError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code
  if (typeof code === 'string') {
    if (SOCKET_CODES.has(code) || TRANSIENT_CODES.has(code)) return true
    if (/^[0-9A-Z]{5}$/.test(code)) return TRANSIENT_CLASSES.includes(code.slice(0, 2))
  }
  if (err instanceof RangeError || err instanceof TypeError) return false
  const message = (err as { message?: unknown } | null)?.message
  return typeof message === 'string' && CONNECTION_MESSAGE.test(message)
}
