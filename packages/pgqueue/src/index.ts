import { connect, migrate, TenantKey, type Connectable, type MigrateOptions, type MigrateResult } from '@pgqueue/core/internal'
import { createProducer, type ProducerOptions, type Queues, type Schedules } from '@pgqueue/producer'
import { Stats } from '@pgqueue/stats'

export * from '@pgqueue/core'
export { Queues, Schedules, TenantQueues, TenantSchedules, TenantWorkerMetadata, createProducer } from '@pgqueue/producer'
export type * from '@pgqueue/producer'
export { Worker, JobAbortedError, JobBackOffError } from '@pgqueue/worker'
export type { WorkerOptions, WorkerEvents, Job, JobContext, JobHandler, JobHandlers, HandlerResult, FlowParent, FlowAddNode, FlowHandle } from '@pgqueue/worker'
export { Scheduler } from '@pgqueue/scheduler'
export type { SchedulerOptions, SchedulerEvents } from '@pgqueue/scheduler'
export { ScheduleRunner } from '@pgqueue/schedule-runner'
export type { ScheduleRunnerOptions, ScheduleRunnerEvents } from '@pgqueue/schedule-runner'
export { Maintenance } from '@pgqueue/maintenance'
export type { MaintenanceOptions, MaintenanceEvents, MaintenanceReport } from '@pgqueue/maintenance'
export { Stats, TenantStats } from '@pgqueue/stats'
export { Coordinator } from './coordinator.js'
export type { CoordinatorConnections, CoordinatorOptions, CoordinatorEvents, CoordinatorComponent } from './coordinator.js'
export type { StatsOptions } from '@pgqueue/stats'

/**
 * Creates or upgrades the pgqueue schema, and the NOLOGIN group roles when missing and permitted.
 * Run it as the schema owner (admin). Idempotent and safe to run from several processes at once.
 */
export async function initialize(adminUrl: Connectable, options: MigrateOptions = {}): Promise<MigrateResult> {
  return migrate(adminUrl, options)
}

/** What quickstart() returns: everything a service that pushes work needs, over one pool. */
export interface QuickstartClient {
  queues: Queues
  schedules: Schedules
  stats: Stats
  /** Closes the clients, and the pool when quickstart() opened it from a URL. */
  close(): Promise<void>
}

/**
 * Queues, Schedules and Stats for one service, sharing one pool. Connect as a member of the user role:
 * every call then runs for the tenant chosen with `withTenant()` / `forTenant()`, under row-level security.
 */
export async function quickstart(url: Connectable, options: ProducerOptions = {}): Promise<QuickstartClient> {
  TenantKey.resolve(options.tenantSecret) // fail fast, before a pool is opened
  const connection = connect(url, { max: options.poolSize ?? 10, applicationName: options.applicationName ?? 'pgqueue' })
  const producer = createProducer(connection.pool, options)
  const stats = Stats.create(connection.pool, {
    ...(options.schema === undefined ? {} : { schema: options.schema }),
    ...(options.tenantSecret === undefined ? {} : { tenantSecret: options.tenantSecret }),
  })
  return {
    queues: producer.queues,
    schedules: producer.schedules,
    stats,
    async close() {
      await producer.close()
      await stats.close()
      await connection.close()
    },
  }
}

/** The default export, for the `pgqueue.initialize(...)` / `pgqueue.quickstart(...)` style of the README. */
const pgqueue = { initialize, quickstart }
export default pgqueue
