import net from 'node:net'

/** A TCP proxy to a PostgreSQL server that can go silent, as a network partition does. */
export interface PartitionProxy {
  /** `url` with host and port replaced by the proxy's. */
  url: (url: string) => string
  /** Stops forwarding in both directions without closing anything (no RST, no FIN): statements hang. */
  partition(): void
  /** Forwards again; bytes held while partitioned are delivered, as TCP retransmission would. */
  heal(): void
  close(): Promise<void>
}

/**
 * Starts a proxy on a free local port in front of `target` (a postgres:// URL). While partitioned, new
 * connections are accepted but not forwarded, and open ones stop reading, so neither side sees an error.
 */
export async function startPartitionProxy(target: string): Promise<PartitionProxy> {
  const t = new URL(target)
  const upstreamHost = t.hostname
  const upstreamPort = Number(t.port || 5432)
  let silent = false
  const sockets = new Set<net.Socket>()
  // Bytes read while silent, per destination, delivered on heal().
  const held: { to: () => net.Socket | undefined; chunk: Buffer }[] = []

  const forward = (to: () => net.Socket | undefined) => (chunk: Buffer) => {
    if (silent) held.push({ to, chunk })
    else to()?.write(chunk)
  }
  const server = net.createServer((client) => {
    let upstream: net.Socket | undefined
    sockets.add(client)
    client.on('error', () => {})
    client.on('close', () => {
      sockets.delete(client)
      upstream?.destroy()
    })
    client.on('data', forward(() => upstream))
    const link = () => {
      if (client.destroyed) return
      upstream = net.connect(upstreamPort, upstreamHost)
      sockets.add(upstream)
      upstream.on('error', () => client.destroy())
      upstream.on('close', () => {
        sockets.delete(upstream!)
        client.destroy()
      })
      upstream.on('data', forward(() => client))
    }
    if (silent) pendingLinks.push(link)
    else link()
  })
  const pendingLinks: (() => void)[] = []
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as net.AddressInfo).port

  return {
    url(url) {
      const u = new URL(url)
      u.hostname = '127.0.0.1'
      u.port = String(port)
      return u.toString()
    },
    partition() {
      silent = true
    },
    heal() {
      silent = false
      for (const link of pendingLinks.splice(0)) link()
      for (const { to, chunk } of held.splice(0)) to()?.write(chunk)
    },
    async close() {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
