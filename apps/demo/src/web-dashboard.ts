import { createServer } from 'node:http'
import { createDashboard, toNodeHandler } from '@pgqueue/dashboard'

/** The web dashboard of the demo, served on a free port of 127.0.0.1. */
export interface DemoWebDashboard {
  url: string
  close(): Promise<void>
}

/**
 * Serves @pgqueue/dashboard in operator mode: it reads every tenant as the worker login and acts (pause,
 * retry, cancel) through the user login, signed in as the tenant of the row acted on.
 */
export async function serveWebDashboard(p: { workerUrl: string; userUrl: string; schema: string; tenantSecret: string | undefined }): Promise<DemoWebDashboard> {
  const dashboard = createDashboard({
    mode: 'operator',
    connection: p.workerUrl,
    actionConnection: p.userUrl,
    ...(p.tenantSecret !== undefined ? { tenantSecret: p.tenantSecret } : {}),
    schema: p.schema,
    title: 'pgqueue demo',
  })
  const server = createServer(toNodeHandler(dashboard.fetch))
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  const { port } = server.address() as { port: number }
  return {
    url: `http://127.0.0.1:${port}/`,
    async close() {
      server.closeAllConnections()
      await new Promise((r) => server.close(r))
      await dashboard.close()
    },
  }
}
