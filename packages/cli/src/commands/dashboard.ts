import { createServer } from 'node:http'
import type { Command } from '@commander-js/extra-typings'
import { createDashboard, toNodeHandler } from '@pgqueue/dashboard'
import { action } from '../action.js'
import { parsePositiveInt } from '../clients.js'
import { runUntilSignal } from './run.js'

/** `pgqueue dashboard`: serves the web dashboard in operator mode until SIGTERM/SIGINT. */
export function registerDashboard(program: Command): void {
  program
    .command('dashboard')
    .description('serve the web dashboard (operator mode: --url is a worker-role login) until SIGTERM/SIGINT')
    .option('--port <n>', 'port to listen on', '3000')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--base-path <path>', 'path prefix the pages live under, e.g. /admin', '')
    .option('--action-url <url>', 'a user-role login for actions (with the tenant secret); without it the dashboard is read-only')
    .option('--read-only', 'no actions, whatever logins are given')
    .action(
      action(async (ctx, flags: { port: string; host: string; basePath: string; actionUrl?: string; readOnly?: boolean }) => {
        const port = Number(flags.port) === 0 ? 0 : parsePositiveInt(flags.port, '--port')
        const dashboard = createDashboard({
          mode: 'operator',
          connection: ctx.url,
          ...(flags.actionUrl !== undefined ? { actionConnection: flags.actionUrl } : {}),
          ...(ctx.settings.tenantSecret !== undefined ? { tenantSecret: ctx.settings.tenantSecret } : {}),
          ...(ctx.names.schema !== undefined ? { schema: ctx.names.schema } : {}),
          basePath: flags.basePath,
          readOnly: flags.readOnly === true,
          onError: (err) => ctx.out.note(`pgqueue dashboard: ${(err as Error).message}`),
        })
        const server = createServer(toNodeHandler((r) => dashboard.fetch(r)))
        let address = ''
        const served = {
          async start() {
            await new Promise<void>((resolve, reject) => {
              server.once('error', reject)
              server.listen(port, flags.host, () => resolve())
            })
            const a = server.address()
            address = `http://${flags.host}:${typeof a === 'object' && a !== null ? a.port : port}${flags.basePath}/`
          },
          async stop() {
            server.closeAllConnections()
            await new Promise<void>((resolve) => server.close(() => resolve()))
            await dashboard.close()
          },
          on() {
            return served
          },
        }
        return runUntilSignal(ctx, 'dashboard', served, { get address() { return address } })
      }),
    )
}
