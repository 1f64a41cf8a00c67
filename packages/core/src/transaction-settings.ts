import { sql, type Kysely } from 'kysely'

/**
 * Turns JIT off for the rest of this transaction. Range reads over many history partitions (global
 * Stats, the stats rollup) inflate the planner's cost estimates far beyond the real work (a few ms),
 * which made PostgreSQL spend 50 ms compiling each query.
 */
export async function jitOffSetLocal(trx: Kysely<any>): Promise<void> {
  await sql`select set_config('jit', 'off', true)`.execute(trx)
}
