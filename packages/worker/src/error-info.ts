/** Longest error message kept in last_error / history, in characters. */
export const MAX_ERROR_MESSAGE = 2_000
/** Longest stack kept, in characters. */
export const MAX_ERROR_STACK = 8_000

/** The JSON stored for a failed run: bounded, so a huge error cannot bloat the live table. */
export interface ErrorInfo {
  message: string
  name?: string
  stack?: string
  code?: string
  attempt?: number
  at: string
}

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

/** JSON text for an ErrorInfo, with NUL removed (jsonb cannot store it). */
export function errorJson(info: ErrorInfo): string {
  return JSON.stringify(info).replace(/\\u0000/g, '')
}
