// Template: an HTTP API that pushes jobs and defines schedules for its tenants. Copy it and replace the
// tenant lookup with your authentication. Runs as the user role: row-level security keeps each request
// inside its tenant, even if a bug passes the wrong ids.
//
//   DATABASE_URL=postgres://pgqueue_app:pgqueue_app@localhost:5432/app \
//   PGQUEUE_TENANT_SECRET=...   (the tenant secret initialize() installed; signs each request's tenant)
//   ADMIN_DATABASE_URL=postgres://pgqueue_admin:pgqueue_admin@localhost:5432/app   (optional: runs initialize() first)
//   PORT=3000 pnpm --filter @pgqueue/example-api start
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { createProducer } from '@pgqueue/producer'
import pgqueue, { PgQueueValidationError, PgQueueTenantRequiredError } from 'pgqueue'

const databaseUrl = required('DATABASE_URL')
const initialized = process.env.ADMIN_DATABASE_URL ? await pgqueue.initialize(process.env.ADMIN_DATABASE_URL) : undefined

// Without PGQUEUE_TENANT_SECRET, the secret initialize() returned (ADMIN_DATABASE_URL set) is used.
const { queues, schedules, close } = createProducer(databaseUrl, {
  poolSize: 10,
  ...(process.env.PGQUEUE_TENANT_SECRET ? {} : { tenantSecret: initialized?.tenantSecret }),
})

/** Your authentication goes here: the tenant must come from a verified credential, not from the client. */
function tenantOf(req: IncomingMessage): string {
  const tenant = req.headers['x-tenant']
  if (typeof tenant !== 'string' || tenant === '') throw new HttpError(401, 'x-tenant header required')
  return tenant
}

type Route = (req: IncomingMessage, tenant: string, params: string[], body: any) => Promise<unknown>
const routes: Array<[method: string, path: RegExp, handler: Route]> = [
  // POST /queues/emails/jobs {"type":"send","target":{...},"payload":"text","key":"welcome-42","delay":20000}
  ['POST', /^\/queues\/([^/]+)\/jobs$/, (_req, tenant, [queue], body) =>
    queues.withTenant(tenant).push({
      queue: queue!, type: body.type, payload: body.payload, target: body.target, key: body.key,
      delay: body.delay, priority: body.priority, retryPolicy: body.retryPolicy,
    })],
  ['GET', /^\/jobs\/([^/]+)$/, (_req, tenant, [id]) => queues.withTenant(tenant).get(id!)],
  ['DELETE', /^\/jobs\/([^/]+)$/, async (_req, tenant, [id]) => ({ outcome: await queues.withTenant(tenant).delete(id!) })],
  ['GET', /^\/queues\/([^/]+)\/history$/, (_req, tenant, [queue]) => queues.withTenant(tenant).history({ queue: queue!, limit: 50 })],
  // PUT /schedules/nightly {"queue":"reports","type":"build","schedule":{"cron":"0 3 * * *","timezone":"Europe/Warsaw"}}
  ['PUT', /^\/schedules\/([^/]+)$/, (_req, tenant, [key], body) =>
    schedules.withTenant(tenant).create({ key: key!, queue: body.queue, type: body.type, schedule: body.schedule, target: body.target, payload: body.payload })],
]

const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
  try {
    const path = new URL(req.url ?? '/', 'http://x').pathname
    const route = routes.find(([method, re]) => method === req.method && re.test(path))
    if (!route) throw new HttpError(404, 'not found')
    const tenant = tenantOf(req)
    const body = req.method === 'POST' || req.method === 'PUT' ? await readJson(req) : undefined
    const result = await route[2](req, tenant, path.match(route[1])!.slice(1).map(decodeURIComponent), body)
    send(res, result === undefined || result === null ? 404 : 200, result ?? { error: 'not found' })
  } catch (err) {
    // pgqueue's validation errors name the field: a client error, not a server one.
    if (err instanceof HttpError) send(res, err.status, { error: err.message })
    else if (err instanceof PgQueueValidationError) send(res, 400, { error: err.message, field: err.field })
    else if (err instanceof PgQueueTenantRequiredError) send(res, 401, { error: err.message })
    else {
      console.error(err)
      send(res, 500, { error: 'internal error' })
    }
  }
})
server.listen(Number(process.env.PORT ?? 3000), () => console.log(`api listening on :${process.env.PORT ?? 3000}`))

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    server.close()
    void close().then(() => process.exit(0))
  })
}

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message)
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' })
  // Payloads and results are bytes: send them as base64.
  res.end(JSON.stringify(body, (_k, v) => (v?.type === 'Buffer' && Array.isArray(v.data) ? Buffer.from(v.data).toString('base64') : v)))
}

async function readJson(req: IncomingMessage): Promise<any> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  try {
    return chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : {}
  } catch {
    throw new HttpError(400, 'body must be JSON')
  }
}

function required(name: string): string {
  const value = process.env[name]
  if (!value) {
    console.error(`${name} is required`)
    process.exit(2)
  }
  return value
}
