#!/usr/bin/env node
import { createServer } from 'node:http'
import { parseArgs } from 'node:util'
import { createDashboard } from './dashboard.js'
import { toNodeHandler } from './node.js'

const USAGE = `pgqueue-dashboard: serve the pgqueue dashboard

  pgqueue-dashboard --url <worker-role URL> [--action-url <user-role URL>] [--port 3000] [--host 127.0.0.1]
                    [--base-path /admin] [--schema pgqueue] [--read-only]

Operator mode: reads every tenant on --url (a worker-role login); actions go through --action-url (a
user-role login, with PGQUEUE_TENANT_SECRET), or none without it. Environment: DATABASE_URL for --url.`

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    'action-url': { type: 'string' },
    port: { type: 'string', default: '3000' },
    host: { type: 'string', default: '127.0.0.1' },
    'base-path': { type: 'string', default: '' },
    schema: { type: 'string' },
    'read-only': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
})
const url = values.url ?? process.env.DATABASE_URL
if (values.help || url === undefined) {
  console.log(USAGE)
  process.exit(values.help ? 0 : 2)
}
const dashboard = createDashboard({
  mode: 'operator',
  connection: url,
  ...(values['action-url'] !== undefined ? { actionConnection: values['action-url'] } : {}),
  ...(process.env.PGQUEUE_TENANT_SECRET !== undefined ? { tenantSecret: process.env.PGQUEUE_TENANT_SECRET } : {}),
  ...(values.schema !== undefined ? { schema: values.schema } : {}),
  basePath: values['base-path'],
  readOnly: values['read-only'],
  onError: (err) => console.error(err),
})
const server = createServer(toNodeHandler((r) => dashboard.fetch(r)))
server.listen(Number(values.port), values.host, () => {
  const a = server.address()
  const port = typeof a === 'object' && a !== null ? a.port : values.port
  console.log(`pgqueue dashboard on http://${values.host}:${port}${values['base-path']}/`)
})
const stop = () => {
  server.close()
  server.closeAllConnections()
  void dashboard.close().then(() => process.exit(0))
}
process.once('SIGINT', stop)
process.once('SIGTERM', stop)
