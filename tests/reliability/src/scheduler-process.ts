/**
 * A Scheduler and/or a ScheduleRunner in their own process, for kill -9 tests. Environment:
 * PGQ_URL, PGQ_LISTEN_URL, PGQ_LISTEN ('0' polls only), PGQ_SCHEMA, PGQ_NODE,
 * PGQ_COMPONENTS ('scheduler', 'runner' or 'scheduler,runner'). Prints JSON lines: ready, stats, stopped.
 */
import { Scheduler } from '@pgqueue/scheduler'
import { ScheduleRunner } from '@pgqueue/schedule-runner'

const env = process.env
const components = (env.PGQ_COMPONENTS ?? 'scheduler').split(',')
const counts = { rounds: 0, fired: 0, errors: 0, unhandled: 0, lastError: '' }

function line(event: string, extra: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ event, node: env.PGQ_NODE, ...extra })}\n`)
}
process.on('unhandledRejection', (err) => {
  counts.unhandled += 1
  line('unhandled', { error: String(err) })
})
const onError = (err: Error) => {
  counts.errors += 1
  counts.lastError = err.message
}

const started: Array<{ stop(): Promise<void> }> = []
if (components.includes('scheduler')) {
  const scheduler = Scheduler.create(env.PGQ_URL!, {
    schema: env.PGQ_SCHEMA!,
    nodeId: `${env.PGQ_NODE}-s`,
    pollMs: Number(env.PGQ_POLL_MS ?? 200),
    listen: env.PGQ_LISTEN !== '0',
    ...(env.PGQ_LISTEN_URL ? { listenUrl: env.PGQ_LISTEN_URL } : {}),
  })
  scheduler.on('round', () => (counts.rounds += 1))
  scheduler.on('error', onError)
  await scheduler.start()
  started.push(scheduler)
}
if (components.includes('runner')) {
  const runner = ScheduleRunner.create(env.PGQ_URL!, { schema: env.PGQ_SCHEMA!, pollMs: Number(env.PGQ_POLL_MS ?? 200) })
  runner.on('batch', (b: { fired: number }) => (counts.fired += b.fired))
  runner.on('error', onError)
  await runner.start()
  started.push(runner)
}

const timer = setInterval(() => line('stats', { ...counts, rss: process.memoryUsage().rss }), 1000)
async function shutdown(): Promise<void> {
  clearInterval(timer)
  await Promise.all(started.map((c) => c.stop()))
  line('stopped', counts)
  process.exit(0)
}
process.on('SIGTERM', () => void shutdown())
process.on('SIGINT', () => void shutdown())
line('ready', { pid: process.pid })
