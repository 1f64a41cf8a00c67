import { sql, type Kysely } from 'kysely'

/**
 * The advisory lock key core's createHistoryPartition() takes. The partition and retention tasks take
 * the same key, so creating, attaching and dropping partitions never interleave, whoever calls.
 */
export function partitionLockKey(schema: string): string {
  return `pgqueue.partitions:${schema}`
}

/**
 * Tries the transaction-scoped advisory lock of a partition task; false when another instance holds it.
 * Transaction-scoped (never session-level), so it is released at commit and safe behind PgBouncer.
 */
export async function lockTryPartitions(trx: Kysely<any>, schema: string): Promise<boolean> {
  const { rows } = await sql<{ ok: boolean }>`select pg_try_advisory_xact_lock(hashtext(${partitionLockKey(schema)})) as ok`.execute(trx)
  return rows[0]?.ok === true
}

/**
 * Tries the transaction-scoped advisory lock of a housekeeping task. The two-key form keeps these
 * keys apart from the single-key locks of migrations and partitions.
 */
export async function lockTryTask(trx: Kysely<any>, schema: string, task: string): Promise<boolean> {
  const { rows } = await sql<{ ok: boolean }>`
    select pg_try_advisory_xact_lock(hashtext('pgqueue.maintenance'), hashtext(${`${schema}:${task}`})) as ok`.execute(trx)
  return rows[0]?.ok === true
}

/** Bounds how long the rest of this transaction's statements wait for table locks (SQLSTATE 55P03 on timeout). */
export async function lockTimeoutSetLocal(trx: Kysely<any>, ms: number): Promise<void> {
  await sql`select set_config('lock_timeout', ${`${ms}ms`}, true)`.execute(trx)
}

/** True for PostgreSQL's lock_not_available (lock_timeout expired). */
export function isLockTimeout(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === '55P03'
}
