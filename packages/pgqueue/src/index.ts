import { migrate, type Connectable, type MigrateOptions, type MigrateResult } from '@pgqueue/core'

export * from '@pgqueue/core'

/**
 * Creates or upgrades the pgqueue schema, and the NOLOGIN group roles when missing and permitted.
 * Run it as the schema owner (admin). Idempotent and safe to run from several processes at once.
 */
export async function initialize(adminUrl: Connectable, options: MigrateOptions = {}): Promise<MigrateResult> {
  return migrate(adminUrl, options)
}

/** The default export mirrors the seed's `pgqueue.initialize(...)` style. */
const pgqueue = { initialize }
export default pgqueue
