import { sql, type Kysely } from 'kysely'

/**
 * Turns JIT off for the rest of this transaction. Range reads over many history partitions (global
 * Stats, the stats rollup) inflate the planner's cost estimates far beyond the real work, so
 * PostgreSQL compiled each query with JIT for many times longer than running it took.
 */
export async function jitOffSetLocal(trx: Kysely<any>): Promise<void> {
  await sql`select set_config('jit', 'off', true)`.execute(trx)
}
