import { connect, validateTenantId, type Connectable } from '@pgqueue/core/internal'
import { ProducerContext } from './context.js'
import { resolveProducerOptions, type ProducerOptions } from './options.js'
import { TenantSchedules } from './tenant-schedules.js'

/**
 * The entry point for defining cron and interval schedules as the queue_user role. The
 * ScheduleRunner (@pgqueue/schedule-runner) turns due schedules into jobs.
 */
export class Schedules {
  /** @internal */
  constructor(private readonly ctx: ProducerContext) {}

  /** Opens a client on a URL (its own pool, ended by close()) or on a pg.Pool you own (left open). */
  static create(urlOrPool: Connectable, options: ProducerOptions = {}): Schedules {
    const opts = resolveProducerOptions(options)
    const connection = connect(urlOrPool, { max: opts.poolSize, applicationName: opts.applicationName })
    return new Schedules(new ProducerContext(connection, opts, 'Schedules'))
  }

  /** The schedules of one tenant. Throws PgQueueTenantRequiredError for an empty tenant id. */
  withTenant(tenantId: string): TenantSchedules {
    this.ctx.assertOpen()
    return new TenantSchedules(this.ctx, validateTenantId(tenantId))
  }

  /** Ends the pool when this client created it; later calls throw PgQueueStoppedError. */
  close(): Promise<void> {
    return this.ctx.close()
  }
}
