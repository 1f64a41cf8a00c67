import { PgQueueStoppedError, type Connection } from '@pgqueue/core'
import type { ResolvedProducerOptions } from './options.js'

/**
 * What the tenant clients share: one connection and the resolved options. Closing it ends the pool
 * only when pgqueue created it from a URL.
 * @internal
 */
export class ProducerContext {
  private closed = false
  constructor(
    readonly connection: Connection,
    readonly options: ResolvedProducerOptions,
    private readonly component: string,
  ) {}

  get db() {
    return this.connection.db
  }

  get schema() {
    return this.options.schema
  }

  /** Throws PgQueueStoppedError after close(), so a late call fails clearly instead of on an ended pool. */
  assertOpen(): void {
    if (this.closed) throw new PgQueueStoppedError(this.component)
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.connection.close()
  }
}
