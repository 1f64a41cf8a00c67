import { sql, type Kysely } from 'kysely'
import { lockCoordinationRow, PARTITIONS_LOCK, type Database } from '@pgqueue/core/internal'

/**
 * Tries the lock of the partition tasks: the `partitions` row of the schema's locks table, which core's
 * createHistoryPartition() locks too, so creating, attaching and dropping partitions never interleave,
 * whoever calls. False when another instance holds it. A row lock lasts until the transaction ends
 * (safe behind PgBouncer), and only the schema owner may take it: no other login can make these tasks
 * skip by holding it.
 */
export async function lockTryPartitions(trx: Kysely<Database>, p: { schema: string }): Promise<boolean> {
  const { schema } = p
  return lockCoordinationRow(trx, { schema, name: PARTITIONS_LOCK, wait: false })
}

/** Tries the lock of a housekeeping task (the `maintenance:<task>` row of the locks table); false when another instance holds it. */
export async function lockTryTask(trx: Kysely<Database>, p: { schema: string; task: string }): Promise<boolean> {
  const { schema, task } = p
  return lockCoordinationRow(trx, { schema, name: `maintenance:${task}`, wait: false })
}

/** Bounds how long the rest of this transaction's statements wait for table locks (SQLSTATE 55P03 on timeout). */
export async function lockTimeoutSetLocal(trx: Kysely<Database>, ms: number): Promise<void> {
  await sql`select set_config('lock_timeout', ${`${ms}ms`}, true)`.execute(trx)
}

/** True for PostgreSQL's lock_not_available (lock_timeout expired). */
export function isLockTimeout(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === '55P03'
}
