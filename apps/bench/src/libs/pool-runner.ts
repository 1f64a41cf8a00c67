import type { BenchJob, Handler } from '../types.js'

/** Runs handler over jobs with at most `limit` in flight; resolves when all are done. */
export async function runLimited(jobs: BenchJob[], limit: number, handler: Handler): Promise<void> {
  let next = 0
  const lane = async (): Promise<void> => {
    while (next < jobs.length) {
      const job = jobs[next++]!
      await handler(job)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, lane))
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
