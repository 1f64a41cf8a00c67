import type { BenchJob, LibAdapter } from '../types.js'
import { sleep } from '../libs/pool-runner.js'

/** What a case gets besides the adapter. */
export interface CaseContext {
  lib: LibAdapter
  /** ANALYZE every table of the library's schema (done for every library alike after a pre-fill). */
  analyze(): Promise<void>
  /**
   * Opens a session that holds a REPEATABLE READ snapshot (the database's oldest) until the returned
   * function is called: VACUUM removes nothing newer meanwhile.
   */
  holdSnapshot(): Promise<() => Promise<void>>
  /** Dead tuples in the library's tables and their TOAST, as the statistics system last counted them. */
  deadTuples(): Promise<number>
  /**
   * The database's cumulative work counters (pg_stat_database: transactions, buffers, rows), after
   * waiting for backends to flush theirs. Deltas over a case count the server's work whatever else
   * the machine runs, when the bench has its own database.
   */
  serverCounters(): Promise<Record<string, number>>
  log(line: string): void
}

export const now = (): number => performance.now()

/** Jobs numbered from `from`, tenant-major: tenant k holds a contiguous run of `perTenant` jobs. */
export function makeJobs(count: number, tenants: number, from = 0, prefix = 't'): BenchJob[] {
  const perTenant = Math.ceil(count / tenants)
  return Array.from({ length: count }, (_, i) => ({ s: from + i, t: `${prefix}${Math.floor(i / perTenant)}` }))
}

/** Pushes in chunks (untimed pre-fill): lib.seed() in chunks of SEED_CHUNK where the library has it. */
export async function prefill(lib: LibAdapter, jobs: BenchJob[], chunk = 1000): Promise<void> {
  if (lib.seed) {
    for (let i = 0; i < jobs.length; i += SEED_CHUNK) await lib.seed(jobs.slice(i, i + SEED_CHUNK))
    return
  }
  for (let i = 0; i < jobs.length; i += chunk) await lib.pushMany(jobs.slice(i, i + chunk))
}

/** Jobs per seed() call: 1,000,000 jobs in 50 calls, each a few MB of parameters. */
const SEED_CHUNK = 20_000

/** Polls until check() is true; throws after timeoutMs. */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string, intervalMs = 5): Promise<void> {
  const deadline = now() + timeoutMs
  while (!(await check())) {
    if (now() > deadline) throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`)
    await sleep(intervalMs)
  }
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[idx]!
}

export const round = (x: number, digits = 1): number => Math.round(x * 10 ** digits) / 10 ** digits
