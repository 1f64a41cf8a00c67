import { EventEmitter } from 'node:events'
import { PgQueueStoppedError, PgQueueValidationError, type Connectable } from '@pgqueue/core/internal'
import { Maintenance, type MaintenanceOptions } from '@pgqueue/maintenance'
import { ScheduleRunner, type ScheduleRunnerOptions } from '@pgqueue/schedule-runner'
import { Scheduler, type SchedulerOptions } from '@pgqueue/scheduler'

/** Where the coordinator connects: the Scheduler and ScheduleRunner as the worker role, Maintenance as the admin. */
export interface CoordinatorConnections {
  /** A login in the worker role (URL or pg.Pool): Scheduler and ScheduleRunner. */
  worker: Connectable
  /** The schema owner (URL or pg.Pool): Maintenance. Leave it out to run no Maintenance here. */
  admin?: Connectable
}

/** Options of Coordinator.create(); each component's own options pass through unchanged. */
export interface CoordinatorOptions {
  /** Schema of the installation, given to every component unless its own options name one. Default 'pgqueue'. */
  schema?: string
  scheduler?: SchedulerOptions
  scheduleRunner?: ScheduleRunnerOptions
  maintenance?: MaintenanceOptions
}

/** Which component an error came from. */
export type CoordinatorComponent = 'scheduler' | 'scheduleRunner' | 'maintenance'

/** Events of a Coordinator. */
export interface CoordinatorEvents {
  /** A component's loop iteration failed; it keeps running and retries with backoff. */
  error: [error: Error, component: CoordinatorComponent]
  started: []
  stopped: []
}

type Component = Scheduler | ScheduleRunner | Maintenance

/**
 * The Scheduler (due jobs, retries, pauses, caps, lease rescue), the ScheduleRunner (cron and interval
 * schedules into jobs) and Maintenance (history partitions, retention, housekeeping) in one object, for
 * a deployment that runs them in one service. Any number of coordinators may run at once; each part
 * shares its work with the others' through the database, as when run alone.
 */
export class Coordinator extends EventEmitter<CoordinatorEvents> {
  readonly scheduler: Scheduler
  readonly scheduleRunner: ScheduleRunner
  /** Undefined when no admin connection was given. */
  readonly maintenance: Maintenance | undefined
  private readonly parts: Array<[CoordinatorComponent, Component]>
  private stopped = false

  private constructor(connections: CoordinatorConnections, options: CoordinatorOptions) {
    super()
    const schema = options.schema === undefined ? {} : { schema: options.schema }
    this.scheduler = Scheduler.create(connections.worker, { ...schema, ...options.scheduler })
    this.scheduleRunner = ScheduleRunner.create(connections.worker, { ...schema, ...options.scheduleRunner })
    this.maintenance = connections.admin === undefined ? undefined : Maintenance.create(connections.admin, { ...schema, ...options.maintenance })
    this.parts = [['scheduler', this.scheduler], ['scheduleRunner', this.scheduleRunner]]
    if (this.maintenance) this.parts.push(['maintenance', this.maintenance])
    for (const [name, part] of this.parts) (part as EventEmitter<{ error: [Error] }>).on('error', (err) => this.emitError(err, name))
  }

  /** Validates the connections and every component's options (PgQueueValidationError names the field). */
  static create(connections: CoordinatorConnections, options: CoordinatorOptions = {}): Coordinator {
    if (typeof connections !== 'object' || connections === null || connections.worker === undefined) {
      throw new PgQueueValidationError('connections.worker', 'is required: a worker-role URL or pg.Pool', connections)
    }
    return new Coordinator(connections, options)
  }

  /**
   * Starts every component; if one fails to start, stops those already started and rejects. A stopped
   * coordinator has released its connections: create a new one to start again.
   */
  async start(): Promise<void> {
    if (this.stopped) throw new PgQueueStoppedError('Coordinator')
    const started: Component[] = []
    try {
      for (const [, part] of this.parts) {
        await part.start()
        started.push(part)
      }
    } catch (err) {
      await Promise.allSettled(started.map((p) => p.stop()))
      throw err
    }
    this.emit('started')
  }

  /** Stops every component, each waiting for its iteration in flight, and releases their connections. */
  async stop(): Promise<void> {
    this.stopped = true
    await Promise.all(this.parts.map(([, part]) => part.stop()))
    this.emit('stopped')
  }

  /** The same as stop(): a stopped Coordinator has released every connection and cannot start again. */
  close(): Promise<void> {
    return this.stop()
  }

  private emitError(err: Error, component: CoordinatorComponent): void {
    // An 'error' event with no listener would throw: components keep running, so must the coordinator.
    if (this.listenerCount('error') > 0) this.emit('error', err, component)
  }
}
