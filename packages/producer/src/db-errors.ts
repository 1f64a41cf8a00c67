import { PgQueueTenantAccessError, isInsufficientPrivilege } from '@pgqueue/core/internal'

/**
 * Runs `fn` and turns PostgreSQL's insufficient_privilege (what row-level security raises for a wrong or
 * missing tenant) into PgQueueTenantAccessError; other errors pass through unchanged.
 */
export async function mapTenantErrors<T>(tenantId: string | undefined, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    if (isInsufficientPrivilege(err)) throw new PgQueueTenantAccessError(tenantId, err)
    throw err
  }
}
