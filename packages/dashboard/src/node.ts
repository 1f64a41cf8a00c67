import type { IncomingMessage, ServerResponse } from 'node:http'
import { Readable } from 'node:stream'

/** A Fetch API handler, such as Dashboard.fetch. */
export type FetchHandler = (request: Request) => Promise<Response>

/**
 * Adapts a Fetch API handler to Node's http (and Express, Connect, Fastify's raw route): builds a Request
 * from the incoming message, streams the Response back, and aborts the request's signal when the client
 * goes away (so a live stream ends). Mount it at the dashboard's basePath; under Express use the full
 * path, e.g. `app.use((req, res) => node(req, res))` after a path check, or `app.all('/admin/queues*', node)`
 * with `req.originalUrl` kept (this adapter reads `originalUrl` when Express sets it).
 */
export function toNodeHandler(handler: FetchHandler): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  return async (req, res) => {
    const controller = new AbortController()
    res.on('close', () => controller.abort())
    const host = req.headers.host ?? 'localhost'
    const proto = (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http'
    const path = (req as { originalUrl?: string }).originalUrl ?? req.url ?? '/'
    const headers = new Headers()
    for (const [k, v] of Object.entries(req.headers)) {
      if (v === undefined) continue
      if (Array.isArray(v)) for (const x of v) headers.append(k, x)
      else headers.set(k, v)
    }
    const hasBody = req.method !== 'GET' && req.method !== 'HEAD'
    const request = new Request(`${proto}://${host}${path}`, {
      method: req.method ?? 'GET',
      headers,
      signal: controller.signal,
      ...(hasBody ? { body: Readable.toWeb(req) as ReadableStream, duplex: 'half' } : {}),
    } as RequestInit)
    let response: Response
    try {
      response = await handler(request)
    } catch {
      response = new Response('internal error', { status: 500 })
    }
    res.statusCode = response.status
    response.headers.forEach((value, key) => res.setHeader(key, value))
    if (response.body === null || req.method === 'HEAD') {
      res.end()
      return
    }
    res.flushHeaders()
    const reader = response.body.getReader()
    try {
      for (;;) {
        const { done, value } = await reader.read()
        if (done) break
        res.write(value)
      }
    } catch {
      // the client went away
    } finally {
      res.end()
    }
  }
}
