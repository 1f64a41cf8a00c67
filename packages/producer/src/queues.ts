import { connect, validateTenantId, type Connectable } from '@pgqueue/core/internal'
import { ProducerContext } from './context.js'
import { resolveProducerOptions, type ProducerOptions } from './options.js'
import { TenantQueues } from './tenant-queues.js'

/**
 * The entry point for pushing and managing jobs as the queue_user role. It holds a pool; each tenant's
 * operations come from withTenant(tenantId), which is cheap (no connection, no query).
 */
export class Queues {
  /** @internal */
  constructor(private readonly ctx: ProducerContext) {}

  /** Opens a client on a URL (its own pool, ended by close()) or on a pg.Pool you own (left open). */
  static create(urlOrPool: Connectable, options: ProducerOptions = {}): Queues {
    const opts = resolveProducerOptions(options)
    const connection = connect(urlOrPool, { max: opts.poolSize, applicationName: opts.applicationName })
    return new Queues(new ProducerContext(connection, opts, 'Queues'))
  }

  /** The operations of one tenant. Throws PgQueueTenantRequiredError for an empty tenant id. */
  withTenant(tenantId: string): TenantQueues {
    this.ctx.assertOpen()
    return new TenantQueues(this.ctx, validateTenantId(tenantId))
  }

  /** Ends the pool when this client created it; later calls throw PgQueueStoppedError. */
  close(): Promise<void> {
    return this.ctx.close()
  }
}
