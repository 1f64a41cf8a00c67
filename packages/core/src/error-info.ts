/** Longest error message kept in last_error / history, in characters. */
export const MAX_ERROR_MESSAGE = 2_000
/** Longest stack kept, in characters. */
export const MAX_ERROR_STACK = 8_000

/**
 * The one error record pgqueue stores, in jobs.last_error and job_history.error, whoever writes it: a
 * handler's error or timeout and a cancel (the Worker), an outcome the database refused (the Worker),
 * an expired lease (the Scheduler and Maintenance, through jobRescueExpired). Bounded, so a huge error
 * cannot bloat the live table.
 */
export interface ErrorInfo {
  message: string
  /** The error's class name: the handler's, or pgqueue's own (JobAbortedError, LeaseExpiredError, OutcomeNotStoredError). */
  name?: string
  stack?: string
  /** The error's `code` when it has a string one; pgqueue's own records carry one of ERROR_CODES. */
  code?: string
  /** The attempt (run) that failed, counted from 1. */
  attempt?: number
  /** When it was recorded, ISO 8601 in UTC with milliseconds (`2026-11-30T15:09:43.123Z`). */
  at: string
}

/** The codes of the error records pgqueue writes itself (a handler's own errors keep their code). */
export const ERROR_CODES = {
  /** The run's lease expired (its worker crashed or stalled) and a rescuer took the job back. */
  leaseExpired: 'LEASE_EXPIRED',
  /** The run's outcome (result or error) could not be stored and was replaced by this failure. */
  outcomeNotStored: 'OUTCOME_NOT_STORED',
  /** The job was cancelled: while it ran (its handler's signal aborted) or before it ran (removed with archive). */
  cancelled: 'CANCELLED',
} as const

/** Bounds a text and makes it storable: jsonb takes neither NUL nor a lone UTF-16 surrogate. */
function clip(text: string, max: number): string {
  const clipped = text.length <= max ? text : `${text.slice(0, max)}… (${text.length - max} more characters)`
  return wellFormed(clipped).replace(/\u0000/g, '')
}

function wellFormed(text: string): string {
  const native = (text as { toWellFormed?: () => string }).toWellFormed
  return typeof native === 'function' ? native.call(text) : text.replace(/[\uD800-\uDFFF]/gu, '\uFFFD')
}

/** Turns anything thrown into a bounded ErrorInfo; never throws itself (a getter on the thrown value may). */
export function errorInfo(err: unknown, attempt?: number, now: Date = new Date()): ErrorInfo {
  try {
    if (err instanceof Error) {
      const code = (err as { code?: unknown }).code
      return {
        message: clip(String(err.message), MAX_ERROR_MESSAGE),
        name: clip(String(err.name), 200),
        ...(err.stack ? { stack: clip(String(err.stack), MAX_ERROR_STACK) } : {}),
        ...(typeof code === 'string' ? { code: clip(code, 200) } : {}),
        ...(attempt === undefined ? {} : { attempt }),
        at: now.toISOString(),
      }
    }
    let text: string
    try {
      text = typeof err === 'string' ? err : JSON.stringify(err) ?? String(err)
    } catch {
      text = String(err)
    }
    return { message: clip(text, MAX_ERROR_MESSAGE), ...(attempt === undefined ? {} : { attempt }), at: now.toISOString() }
  } catch {
    return { message: 'unprintable error', at: now.toISOString() }
  }
}

/** An ErrorInfo for a failure pgqueue itself records (no stack: the place it was made says nothing). */
export function errorRecord(p: { message: string; name: string; code: string; attempt?: number; now?: Date }): ErrorInfo {
  return {
    message: p.message,
    name: p.name,
    code: p.code,
    ...(p.attempt === undefined ? {} : { attempt: p.attempt }),
    at: (p.now ?? new Date()).toISOString(),
  }
}

/** SQL text for an ErrorInfo built by the statement itself (an expired lease): `attempt` is an SQL
 *  expression, the other fields constants of pgqueue's own; `at` formatted as toISOString() does. */
export function errorRecordSql(p: { message: string; name: string; code: string; attempt: string }): string {
  const lit = (v: string) => `'${v.replace(/'/g, "''")}'`
  return `jsonb_build_object('message', ${lit(p.message)}, 'name', ${lit(p.name)}, 'code', ${lit(p.code)}, 'attempt', ${p.attempt},
           'at', to_char(now() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))`
}

/** JSON text for an ErrorInfo, with NUL removed (jsonb cannot store it). */
export function errorJson(info: ErrorInfo): string {
  return JSON.stringify(info).replace(/\\u0000/g, '')
}
