/**
 * A Worker in its own process, for kill -9 tests. Configured by environment:
 * PGQ_URL (worker-role login, or PgBouncer), PGQ_LISTEN_URL (direct URL for LISTEN; empty = the same),
 * PGQ_LISTEN ('0' polls only), PGQ_SCHEMA, PGQ_NODE, PGQ_CONCURRENCY, PGQ_LEASE_MS, PGQ_WORK_MS.
 * Jobs whose target has { fail: true } always throw. Prints JSON lines: ready, stats (every second), stopped.
 */
import { Worker } from '@pgqueue/worker'

const env = process.env
const counts = { started: 0, completed: 0, failed: 0, errors: 0, unhandled: 0, releasedEarly: 0, lastError: '' }
const workMs = Number(env.PGQ_WORK_MS ?? 2)

function line(event: string, extra: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ event, node: env.PGQ_NODE, ...extra })}\n`)
}

process.on('unhandledRejection', (err) => {
  counts.unhandled += 1
  line('unhandled', { error: String(err) })
})

const worker = Worker.create(
  env.PGQ_URL!,
  {
    schema: env.PGQ_SCHEMA!,
    nodeId: env.PGQ_NODE!,
    concurrency: Number(env.PGQ_CONCURRENCY ?? 10),
    leaseMs: Number(env.PGQ_LEASE_MS ?? 3000),
    pollMs: Number(env.PGQ_POLL_MS ?? 200),
    queueRefreshMs: 500,
    listen: env.PGQ_LISTEN !== '0',
    ...(env.PGQ_LISTEN_URL ? { listenUrl: env.PGQ_LISTEN_URL } : {}),
    ...(env.PGQ_POOL_SIZE ? { poolSize: Number(env.PGQ_POOL_SIZE) } : {}),
    stopTimeoutMs: 5000,
  },
  async (job, ctx) => {
    counts.started += 1
    // A flow job must start only once every parent has finished: one still waiting or live means it
    // was released early (what it reads was committed before its claim, so this cannot miss one).
    if (job.flowId !== null && (await ctx.parents()).some((p) => p.state === 'waiting' || p.state === 'live')) counts.releasedEarly += 1
    if (workMs > 0) await new Promise((r) => setTimeout(r, Math.random() * workMs))
    if ((job.target as { fail?: boolean } | null)?.fail) throw new Error('designed to fail')
    return { result: Buffer.from('ok'), resultType: 'text/plain' }
  },
)
worker.on('job:completed', () => (counts.completed += 1))
worker.on('job:failed', () => (counts.failed += 1))
worker.on('error', (err) => {
  counts.errors += 1
  counts.lastError = err.message
})

const timer = setInterval(() => line('stats', { ...counts, rss: process.memoryUsage().rss, heap: process.memoryUsage().heapUsed }), 1000)

async function shutdown(): Promise<void> {
  clearInterval(timer)
  await worker.stop()
  line('stopped', { ...counts, rss: process.memoryUsage().rss })
  process.exit(0)
}
process.on('SIGTERM', () => void shutdown())
process.on('SIGINT', () => void shutdown())

await worker.start()
line('ready', { pid: process.pid })
