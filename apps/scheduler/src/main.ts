// Template: the coordination service. Scheduler (due and retried jobs into the fair order, pauses and
// caps, lease rescue), ScheduleRunner (cron and interval schedules into jobs) and Maintenance (history
// partitions, retention, housekeeping). Run two or more copies for availability: they split the work
// with SKIP LOCKED and transaction-scoped advisory locks, with no leader.
//
//   DATABASE_URL=postgres://pgqueue_worker_login:pgqueue_worker_login@localhost:5432/app \
//   ADMIN_DATABASE_URL=postgres://pgqueue_admin:pgqueue_admin@localhost:5432/app \
//   pnpm --filter @pgqueue/example-scheduler start
import pgqueue from 'pgqueue'
import { Maintenance } from '@pgqueue/maintenance'
import { ScheduleRunner } from '@pgqueue/schedule-runner'
import { Scheduler } from '@pgqueue/scheduler'

const databaseUrl = process.env.DATABASE_URL
const adminUrl = process.env.ADMIN_DATABASE_URL
if (!databaseUrl) {
  console.error('DATABASE_URL (a member of queue_worker) is required')
  process.exit(2)
}

// Migrations are idempotent and safe to run from every copy at once; they need the schema owner.
if (adminUrl) await pgqueue.initialize(adminUrl)

const scheduler = Scheduler.create(databaseUrl, { logger: console })
const scheduleRunner = ScheduleRunner.create(databaseUrl, { logger: console })
// Maintenance changes partitions (DDL), so it runs as the schema owner.
const maintenance = adminUrl ? Maintenance.create(adminUrl, { retentionMs: 30 * 24 * 3_600_000, logger: console }) : undefined
if (!maintenance) console.warn('ADMIN_DATABASE_URL not set: Maintenance (history partitions, retention) is not running here')

const components = [scheduler, scheduleRunner, ...(maintenance ? [maintenance] : [])]
for (const c of components) c.on('error', (err: Error) => console.error('component error (it keeps running):', err.message))
await Promise.all(components.map((c) => c.start()))
console.log(`scheduler, schedule runner${maintenance ? ' and maintenance' : ''} started`)

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, async () => {
    await Promise.all(components.map((c) => c.stop()))
    process.exit(0)
  })
}
