import { runDemo, type DemoOutcome } from './demo.js'
import { DEFAULT_ROLES, onShutdown, openDemoDatabase } from './database.js'
import { parseOptions } from './options.js'

const opts = parseOptions(process.argv.slice(2))
const databaseUrl = process.env.DATABASE_URL || undefined

// Ctrl-C (or SIGTERM) at any point: stop producing, let the components stop, then stop and remove
// the embedded database, even when it is still starting.
const abort = new AbortController()
let running: Promise<DemoOutcome> | undefined
process.stdout.write(databaseUrl ? 'using DATABASE_URL\n' : 'starting an embedded PostgreSQL 18 (temporary folder, free port)...\n')
const suffix = opts.loginSuffix ? `_${opts.loginSuffix}` : ''
const roles = { ...DEFAULT_ROLES, admin: `pgqueue_admin${suffix}`, worker: `pgqueue_worker_login${suffix}`, user: `pgqueue_app${suffix}` }
const opening = openDemoDatabase({ databaseUrl, roles })
const shutdown = onShutdown(async () => {
  abort.abort()
  await running?.catch(() => {})
  const dropped = await opening.then((db) => db.stop({ keep: opts.keep }), () => [] as string[])
  if (dropped.length > 0) process.stdout.write(`dropped the roles this run created, with what they own: ${dropped.join(', ')} (--keep keeps them)\n`)
})
try {
  const db = await opening
  process.stdout.write(`roles: ${roles.admin} (schema owner), ${roles.worker} (in queue_worker), ${roles.user} (in queue_user)${db.source === 'embedded' ? '; the server is removed on exit' : ''}\n`)
  running = runDemo(db, opts, abort.signal)
  const outcome = await running
  await shutdown.run(outcome.ok ? 0 : 1)
} catch (err) {
  process.stderr.write(`demo failed: ${(err as Error).stack ?? err}\n`)
  await shutdown.run(1)
}
