/** Something a live page shows, refreshed by the hub: totals and per-queue live counts. */
export type LiveSnapshot = Record<string, number | string | null>

interface Channel {
  subscribers: Set<(data: string) => void>
  timer: ReturnType<typeof setTimeout> | undefined
  last: string | undefined
  running: boolean
}

/**
 * One refresh per scope for every open page: the first page of a scope (the operator, or one tenant)
 * starts a loop that loads a snapshot every `refreshMs` and sends it to all of that scope's pages over
 * server-sent events; the last page to leave stops it. Ten open tabs cost one query per interval, not ten.
 */
export class LiveHub {
  /** Snapshots loaded so far (tests check that tabs share them). */
  loads = 0
  private readonly channels = new Map<string, Channel>()
  private closed = false

  constructor(
    private readonly refreshMs: number,
    private readonly load: (tenantId: string | undefined) => Promise<LiveSnapshot>,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** Adds a page of a scope; returns its unsubscribe. It gets the last snapshot at once when there is one. */
  subscribe(tenantId: string | undefined, send: (data: string) => void): () => void {
    const key = tenantId === undefined ? '' : `t:${tenantId}`
    let ch = this.channels.get(key)
    if (!ch) {
      ch = { subscribers: new Set(), timer: undefined, last: undefined, running: false }
      this.channels.set(key, ch)
    }
    ch.subscribers.add(send)
    if (ch.last !== undefined) send(ch.last)
    if (!ch.running) {
      ch.running = true
      void this.tick(key, ch, tenantId)
    }
    return () => {
      ch!.subscribers.delete(send)
      if (ch!.subscribers.size === 0) {
        ch!.running = false
        if (ch!.timer) clearTimeout(ch!.timer)
        this.channels.delete(key)
      }
    }
  }

  /** Subscribed pages, over every scope. */
  get pages(): number {
    let n = 0
    for (const ch of this.channels.values()) n += ch.subscribers.size
    return n
  }

  close(): void {
    this.closed = true
    for (const ch of this.channels.values()) {
      ch.running = false
      if (ch.timer) clearTimeout(ch.timer)
    }
    this.channels.clear()
  }

  private async tick(key: string, ch: Channel, tenantId: string | undefined): Promise<void> {
    if (!ch.running || this.closed) return
    try {
      this.loads += 1
      const data = JSON.stringify(await this.load(tenantId))
      ch.last = data
      for (const send of ch.subscribers) send(data)
    } catch (err) {
      this.onError(err)
    }
    // The next load starts refreshMs after this one ended, so a slow database is never queried twice at once.
    if (ch.running && !this.closed && this.channels.get(key) === ch) ch.timer = setTimeout(() => void this.tick(key, ch, tenantId), this.refreshMs)
  }
}
