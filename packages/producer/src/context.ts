import { PgQueueStoppedError, resolveTelemetry, type Connection, type Telemetry } from '@pgqueue/core/internal'
import { loginBypassesTenantScope } from './queries/roles.js'
import type { ResolvedProducerOptions } from './options.js'

/**
 * What the tenant clients share: one connection and the resolved options. Closing it ends the pool
 * only when pgqueue created it from a URL.
 * @internal
 */
export class ProducerContext {
  private closed = false
  private scopeChecked = false
  private telemetryResolved = false
  private telemetryValue: Telemetry | undefined
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

  /** The tracer and instruments, looked up at the first push (an SDK is often registered after imports). */
  get telemetry(): Telemetry | undefined {
    if (!this.telemetryResolved) {
      this.telemetryResolved = true
      this.telemetryValue = resolveTelemetry(this.options.telemetry, { name: '@pgqueue/producer' })
    }
    return this.telemetryValue
  }

  /** Throws PgQueueStoppedError after close(), so a late call fails clearly instead of on an ended pool. */
  assertOpen(): void {
    if (this.closed) throw new PgQueueStoppedError(this.component)
    if (!this.scopeChecked) {
      this.scopeChecked = true
      void this.warnIfUnscoped()
    }
  }

  /**
   * Once per producer, beside its first call (not in its round trip): warns when the login is not held to
   * one tenant by row-level security (a superuser, the table owner, BYPASSRLS or a worker-role member),
   * since tenant isolation then protects nothing.
   */
  private async warnIfUnscoped(): Promise<void> {
    try {
      const reason = await loginBypassesTenantScope(this.connection.pool, { schema: this.schema })
      if (reason !== null) {
        this.options.logger.warn(
          {},
          `the producer's login ${reason}, so row-level security does not confine it to one tenant: connect producers as a member of the user role (queue_user)`,
        )
      }
    } catch {
      // A check that cannot run (before initialize(), database down) says nothing: the call itself reports.
    }
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.connection.close()
  }
}
