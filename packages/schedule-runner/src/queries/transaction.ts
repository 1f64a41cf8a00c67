import { sql, type Transaction } from 'kysely'
import type { Database } from '@pgqueue/core/internal'

/**
 * Bounds how long the rest of this transaction's statements may wait for a lock and run (SET LOCAL,
 * so nothing outlives the transaction, also behind PgBouncer in transaction mode).
 */
export async function transactionSetTimeouts(trx: Transaction<Database>, params: { lockTimeoutMs: number; statementTimeoutMs: number }): Promise<void> {
  await sql`select set_config('lock_timeout', ${`${params.lockTimeoutMs}ms`}, true), set_config('statement_timeout', ${`${params.statementTimeoutMs}ms`}, true)`.execute(trx)
}
