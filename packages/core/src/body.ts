/** The type pgqueue gives a payload or result it serialised from a JSON value. */
export const JSON_TYPE = 'application/json'

/**
 * A payload or result as the application wants it back: the parsed value when it was stored as JSON
 * (`application/json`), the text for a `text/*` type, else the bytes as they are. Undecodable JSON (bytes
 * labelled JSON by hand) comes back as bytes rather than throwing.
 */
export function decodeBody(bytes: Buffer | null, type: string | null): unknown {
  if (bytes === null) return null
  const base = type?.split(';', 1)[0]!.trim().toLowerCase()
  if (base === JSON_TYPE) {
    try {
      return JSON.parse(bytes.toString('utf8'))
    } catch {
      return bytes
    }
  }
  if (base?.startsWith('text/')) return bytes.toString('utf8')
  return bytes
}
