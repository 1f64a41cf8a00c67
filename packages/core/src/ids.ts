import { getRandomValues } from 'node:crypto'

let lastMs = 0
let seq = 0

// Random bytes are drawn from the system in blocks: a system call per id was most of a bulk push's
// client CPU (apps/bench/LOG.md, 2026-11-28).
const POOL_SIZE = 16 * 256
let pool = new Uint8Array(0)
let poolOffset = POOL_SIZE

function randomBytes16(): Uint8Array {
  if (poolOffset + 16 > pool.length) {
    pool = new Uint8Array(POOL_SIZE)
    getRandomValues(pool)
    poolOffset = 0
  }
  const out = pool.slice(poolOffset, poolOffset + 16)
  poolOffset += 16
  return out
}

/**
 * A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then random bits, so ids sort by creation time
 * and reveal nothing across tenants. Within one millisecond a 12-bit counter in `rand_a` keeps ids
 * from one process monotonic.
 */
export function uuidv7(now: number = Date.now()): string {
  const bytes = randomBytes16()
  if (now <= lastMs) {
    seq = (seq + 1) & 0xfff
    if (seq === 0) lastMs += 1 // counter wrapped: borrow the next millisecond
    now = lastMs
  } else {
    lastMs = now
    seq = bytes[6]! & 0x07 // random start, leaving room to count up
  }
  const ms = BigInt(now)
  for (let i = 0; i < 6; i++) bytes[i] = Number((ms >> BigInt(8 * (5 - i))) & 0xffn)
  bytes[6] = 0x70 | ((seq >> 8) & 0x0f)
  bytes[7] = seq & 0xff
  bytes[8] = 0x80 | (bytes[8]! & 0x3f)
  const hex = Buffer.from(bytes).toString('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** True for any well-formed UUID string. */
export function isUuid(value: unknown): value is string {
  return typeof value === 'string' && UUID_RE.test(value)
}

/** The creation time encoded in a UUIDv7. */
export function uuidv7Time(id: string): Date {
  return new Date(parseInt(id.replace(/-/g, '').slice(0, 12), 16))
}
