import { connect, type Connectable } from '@pgqueue/core/internal'
import { ProducerContext } from './context.js'
import { resolveProducerOptions, type ProducerOptions } from './options.js'
import { Queues } from './queues.js'
import { Schedules } from './schedules.js'

/** Queues and Schedules over one shared pool; what quickstart() returns. */
export interface Producer {
  queues: Queues
  schedules: Schedules
  /** Closes both (ends the pool when it was created from a URL). */
  close(): Promise<void>
}

/** Opens Queues and Schedules sharing one pool, for a service that pushes work and defines schedules. */
export function createProducer(urlOrPool: Connectable, options: ProducerOptions = {}): Producer {
  const opts = resolveProducerOptions(options)
  const connection = connect(urlOrPool, { max: opts.poolSize, applicationName: opts.applicationName })
  const ctx = new ProducerContext(connection, opts, 'Producer')
  return { queues: new Queues(ctx), schedules: new Schedules(ctx), close: () => ctx.close() }
}
