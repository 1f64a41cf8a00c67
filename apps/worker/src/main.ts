// Template: a worker service. Run as many copies as you need; they share the work through
// FOR UPDATE SKIP LOCKED claims and never run the same job twice at once.
//
//   DATABASE_URL=postgres://pgqueue_worker_login:pgqueue_worker_login@localhost:5432/app \
//   LISTEN_DATABASE_URL=...   (optional: a direct URL for LISTEN when DATABASE_URL goes through PgBouncer)
//   QUEUES=emails,reports     (optional: default every queue with work)
//   CONCURRENCY=10 pnpm --filter @pgqueue/example-worker start
import { hostname } from 'node:os'
import { Worker, type Job, type JobContext } from '@pgqueue/worker'

const databaseUrl = process.env.DATABASE_URL
if (!databaseUrl) {
  console.error('DATABASE_URL is required')
  process.exit(2)
}

/** One function per job type. Throwing fails the run; it is retried with backoff while attempts remain. */
const handlers: Record<string, (job: Job, ctx: JobContext) => Promise<unknown>> = {
  async send(job, ctx) {
    const target = job.target as { to?: string }
    // Pass ctx.signal to anything that can be aborted: it fires on shutdown, cancel or lease loss.
    await new Promise((resolve) => setTimeout(resolve, 50))
    if (ctx.signal.aborted) throw ctx.signal.reason
    return { result: { sentTo: target.to ?? null } }
  },
  async build(job) {
    return { result: Buffer.from(`report for ${job.tenantId}`), resultType: 'text/plain' }
  },
}

const worker = Worker.create(
  databaseUrl,
  {
    nodeId: process.env.NODE_ID ?? `${hostname()}-${process.pid}`,
    queues: process.env.QUEUES ? process.env.QUEUES.split(',') : undefined,
    concurrency: Number(process.env.CONCURRENCY ?? 10),
    listenUrl: process.env.LISTEN_DATABASE_URL,
    logger: console,
  },
  async (job, ctx) => {
    const handler = handlers[job.type]
    if (!handler) throw new Error(`no handler for job type ${job.type}`)
    return handler(job, ctx)
  },
)
worker.on('error', (err) => console.error('worker error (it keeps running):', err.message))
await worker.start()
console.log(`worker ${worker.options.nodeId} started`)

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, async () => {
    console.log(`${signal}: draining running jobs...`)
    await worker.stop() // waits for handlers in flight (up to stopTimeoutMs), then releases the rest
    process.exit(0)
  })
}
