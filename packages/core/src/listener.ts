import pg from 'pg'
import { KEEPALIVE } from './connect.js'
import { armQueryTimeout, cutSocket } from './query-timeout.js'
import { silentLogger, sleep, type Logger } from './service.js'

/** The channel pgqueue notifies on when jobs become claimable in `schema`. Payloads are always empty. */
export function jobsChannel(schema: string): string {
  return `pgqueue_${schema}_jobs`
}

export interface ListenerOptions {
  /** Connection string for the dedicated LISTEN connection (never a pooled one: PgBouncer in
   *  transaction mode cannot hold LISTEN). When absent, the caller polls only. */
  url: string
  channels: string[]
  onNotify: (channel: string) => void
  /** Called after (re)connecting, so the caller can catch up on what it missed. */
  onConnect?: () => void
  logger?: Logger
  /** How often the idle LISTEN connection is checked with a statement; a check unanswered within
   *  the same time counts as a lost connection (a silent network partition sends no error). Default
   *  30 s. */
  checkMs?: number
}

/**
 * A LISTEN connection that reconnects with backoff after the database restarts or the connection is
 * cut. Notifications are hints: callers must still poll, since one can be missed while reconnecting.
 */
export class NotificationListener {
  private client: pg.Client | undefined
  private stopped = false
  private readonly stopController = new AbortController()
  private readonly logger: Logger
  private loop: Promise<void> | undefined

  constructor(private readonly options: ListenerOptions) {
    this.logger = options.logger ?? silentLogger
  }

  start(): void {
    this.loop ??= this.run()
  }

  async stop(): Promise<void> {
    this.stopped = true
    this.stopController.abort()
    const c = this.client
    this.client = undefined
    if (c) await endWithin(c, 1_000)
    await this.loop
  }

  private async run(): Promise<void> {
    let failures = 0
    while (!this.stopped) {
      const client = new pg.Client({ connectionString: this.options.url, application_name: 'pgqueue-listen', ...KEEPALIVE })
      const checkMs = this.options.checkMs ?? 30_000
      armQueryTimeout(client, checkMs)
      const lost = new Promise<void>((resolve) => {
        client.on('error', () => resolve())
        client.on('end', () => resolve())
      })
      try {
        await client.connect()
        client.on('notification', (msg) => this.options.onNotify(msg.channel))
        for (const ch of this.options.channels) await client.query(`listen ${pg.escapeIdentifier(ch)}`)
        if (this.stopped) {
          await client.end().catch(() => {})
          return
        }
        this.client = client
        failures = 0
        this.options.onConnect?.()
        await Promise.race([lost, this.check(client, checkMs)])
      } catch (err) {
        this.logger.warn({ component: 'listener', err }, `listener: ${(err as Error).message}`)
      }
      await endWithin(client, 1_000)
      if (this.stopped) return
      failures += 1
      await sleep(Math.min(5_000, 100 * 2 ** Math.min(failures, 6)), this.stopController.signal)
    }
  }

  /** Resolves when a periodic check of the idle connection fails or the listener stops. */
  private async check(client: pg.Client, checkMs: number): Promise<void> {
    const signal = this.stopController.signal
    while (!signal.aborted) {
      await sleep(checkMs, signal)
      if (signal.aborted) return
      try {
        await client.query('select 1')
      } catch (err) {
        this.logger.warn({ component: 'listener', err }, `listener: ${(err as Error).message}`)
        return
      }
    }
  }
}

/** Ends a client gracefully, or cuts its socket when the server does not answer within `ms`. */
export async function endWithin(client: pg.Client, ms: number): Promise<void> {
  // The deadline is cancelled once the end settles, so a prompt end leaves no timer keeping the
  // process alive.
  const deadline = new AbortController()
  const ended = await Promise.race([
    client.end().then(() => true, () => true).finally(() => deadline.abort()),
    sleep(ms, deadline.signal).then(() => false),
  ])
  if (!ended) cutSocket(client)
}

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
