import { PgQueueError } from '@pgqueue/core/internal'

/** Exit codes of the `pgqueue` command (documented in the README). */
export const EXIT = Object.freeze({
  /** Done; for status and doctor: nothing needs attention. */
  ok: 0,
  /** The operation failed (a database error, a failed maintenance task, a job not found...). */
  failed: 1,
  /** Bad usage: unknown command or flag, a missing or malformed argument, an unreadable config file. */
  usage: 2,
  /** The database cannot be reached (refused, unknown host, bad password, timeout). */
  unreachable: 3,
  /** pgqueue is not installed there, is at another version, or the login lacks the role this command needs. */
  setup: 4,
  /** status / doctor: something needs attention (the findings say what). */
  attention: 5,
  /** push: some lines were refused (the summary lists them); the others were written. */
  refused: 6,
})

/** A failure the CLI reports as one line on stderr with its exit code. */
export class CliError extends Error {
  constructor(message: string, readonly exitCode: number = EXIT.failed, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'CliError'
  }
}

/** A usage error (exit 2). */
export function usageError(message: string): CliError {
  return new CliError(message, EXIT.usage)
}

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH'])

/** Turns any thrown value into a CliError with the right exit code and a message fit for one line. */
export function toCliError(err: unknown): CliError {
  if (err instanceof CliError) return err
  const e = err as { code?: unknown; message?: unknown; errors?: unknown[] } | null
  const code = typeof e?.code === 'string' ? e.code : undefined
  // An AggregateError (every address of a host refused) carries the codes on its parts.
  const inner = Array.isArray(e?.errors) ? (e!.errors[0] as { code?: unknown } | undefined) : undefined
  const netCode = code ?? (typeof inner?.code === 'string' ? inner.code : undefined)
  const message = oneLine(typeof e?.message === 'string' && e.message !== '' ? e.message : String(err))
  if (netCode !== undefined && CONNECTION_CODES.has(netCode)) return new CliError(`cannot reach the database (${netCode}): ${message || 'connection failed'}`, EXIT.unreachable, { cause: err })
  // SQLSTATE 28xxx: bad password or no such role; 3D000: no such database; 08xxx: connection exceptions.
  if (code !== undefined && (/^28/.test(code) || code === '3D000' || /^08/.test(code))) return new CliError(`cannot connect to the database: ${message}`, EXIT.unreachable, { cause: err })
  if (code === '42501') return new CliError(`permission denied: ${message} (is this the right login for this command? see pgqueue doctor)`, EXIT.setup, { cause: err })
  if (err instanceof PgQueueError) {
    if (err.code === 'SETUP' || err.code === 'ROLE_SETUP') return new CliError(message, EXIT.setup, { cause: err })
    if (err.code === 'VALIDATION') return new CliError(message, EXIT.usage, { cause: err })
    return new CliError(message, EXIT.failed, { cause: err })
  }
  return new CliError(message, EXIT.failed, { cause: err })
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim()
}
