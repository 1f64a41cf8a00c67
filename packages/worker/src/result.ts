import { serializeJson, validateName } from '@pgqueue/core/internal'

/** A handler's return value, as stored in history. */
export interface EncodedResult {
  result: Buffer | null
  resultType: string | null
}

function isEnvelope(value: unknown): value is { result?: unknown; resultType?: unknown } {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) return false
  const keys = Object.keys(value)
  return keys.length > 0 && keys.every((k) => k === 'result' || k === 'resultType')
}

/**
 * Turns whatever a handler returned into bytes and a type. Throws (failing the run, not the worker)
 * when the value cannot be stored: not JSON-serialisable, too large, or a bad resultType.
 */
export function encodeResult(value: unknown, maxBytes: number): EncodedResult {
  if (value === undefined || value === null) return { result: null, resultType: null }
  let data: unknown = value
  let type: string | undefined
  if (isEnvelope(value)) {
    data = value.result
    if (value.resultType !== undefined) {
      type = validateName('handler result: resultType', value.resultType, 255)
    }
  }
  if (data === undefined || data === null) return { result: null, resultType: type ?? null }
  let bytes: Buffer
  if (data instanceof Uint8Array) {
    bytes = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength)
    type ??= 'application/octet-stream'
  } else {
    bytes = Buffer.from(serializeJson('result', data, Number.MAX_SAFE_INTEGER))
    type ??= 'application/json'
  }
  if (bytes.length > maxBytes) throw new RangeError(`handler result: ${bytes.length} bytes is over the limit of ${maxBytes}`)
  return { result: bytes, resultType: type }
}
