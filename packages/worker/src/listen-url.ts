import type pg from 'pg'

/**
 * The connection string for a dedicated LISTEN connection: the explicit one, else the URL the component
 * was given, else one rebuilt from a pool's settings. Undefined when none can be made (poll only).
 */
export function listenUrlFor(target: string | pg.Pool, explicit: string | undefined): string | undefined {
  if (explicit) return explicit
  if (typeof target === 'string') return target
  const o = (target as unknown as { options?: pg.PoolConfig }).options
  if (!o) return undefined
  if (typeof o.connectionString === 'string') return o.connectionString
  if (typeof o.host !== 'string' || o.host.startsWith('/')) return undefined
  const u = new URL('postgres://localhost')
  u.hostname = o.host
  if (o.port) u.port = String(o.port)
  if (o.user) u.username = encodeURIComponent(o.user)
  if (typeof o.password === 'string') u.password = encodeURIComponent(o.password)
  if (o.database) u.pathname = `/${encodeURIComponent(o.database)}`
  return u.toString()
}
