import type { BenchJob, CaseResult } from '../types.js'
import { sleep } from '../libs/pool-runner.js'
import { now, prefill, round, until, type CaseContext } from './context.js'

/**
 * The two holes of issue 18, from the wronged tenant's side (pgqueue only: peers have no tenants).
 * - `priority`: tenant A has a backlog of `a` jobs at priority 1 in the bench queue; B pushes `b` jobs
 *   at priority 0. With priority ahead of fairness, B waited for A's whole backlog.
 * - `queues`: A spreads `a` jobs over `queues` queues, B pushes `b` jobs into one queue, and the Worker
 *   serves every queue. Visiting queues round-robin gave A one share per queue.
 * Reported: ms from B's push until B's last job starts (1 ms handler, concurrency 10), and how many of
 * A's jobs started in that time.
 */
export async function wrongedTenant(ctx: CaseContext, p: { a: number; b: number; queues: number; priority: number; timeoutMs: number }): Promise<CaseResult> {
  const aJobs: BenchJob[] = Array.from({ length: p.a }, (_, i) => ({
    s: i, t: 'A', ...(p.queues > 1 ? { q: `q${String(i % p.queues).padStart(5, '0')}` } : {}), ...(p.priority ? { p: p.priority } : {}),
  }))
  await prefill(ctx.lib, aJobs)
  await ctx.analyze()
  let aStarted = 0
  let aAfterB = 0
  let bStarted = 0
  let tB = Infinity
  let lastBStart = NaN
  await ctx.lib.startWorker({
    concurrency: 10,
    everyQueue: p.queues > 1,
    handler: async (job) => {
      if (job.t === 'B') {
        bStarted++
        if (bStarted === p.b) lastBStart = now()
      } else {
        aStarted++
        if (now() >= tB && bStarted < p.b) aAfterB++
      }
      await sleep(1)
    },
  })
  await until(() => aStarted >= 100, 60_000, 'A to start')
  tB = now()
  await ctx.lib.pushMany(Array.from({ length: p.b }, (_, i) => ({ s: p.a + i, t: 'B', ...(p.queues > 1 ? { q: 'q-b' } : {}) })))
  let timedOut = false
  try {
    await until(() => bStarted >= p.b, p.timeoutMs, "B's jobs", 2)
  } catch {
    timedOut = true
  }
  await ctx.lib.stopWorker()
  if (timedOut) return { value: NaN, unit: 'ms', extra: { timedOut: true, aAfterB, bStarted } }
  return { value: round(lastBStart - tB, 1), unit: 'ms', extra: { aStartedBeforeBsLast: aAfterB, backlog: p.a, queues: p.queues } }
}

/**
 * Weights: tenants H (weight 3) and L (weight 1) each push `n` jobs into the bench queue; the Worker
 * (1 ms handler, concurrency 10) runs until `measure` jobs started. Reported: H's share of them, %.
 */
export async function weights(ctx: CaseContext, p: { n: number; measure: number; timeoutMs: number }): Promise<CaseResult> {
  if (!ctx.lib.setWeight) throw Object.assign(new Error('no weights'), { notAvailable: true })
  await ctx.lib.setWeight('H', 3)
  // Interleaved pushes, so neither tenant's backlog is older than the other's.
  for (let i = 0; i < p.n; i += 1000) {
    await prefill(ctx.lib, Array.from({ length: Math.min(1000, p.n - i) }, (_, k) => ({ s: i + k, t: 'H' })))
    await prefill(ctx.lib, Array.from({ length: Math.min(1000, p.n - i) }, (_, k) => ({ s: p.n + i + k, t: 'L' })))
  }
  await ctx.analyze()
  let started = 0
  let heavy = 0
  await ctx.lib.startWorker({
    concurrency: 10,
    handler: async (job) => {
      if (started < p.measure) {
        started++
        if (job.t === 'H') heavy++
      }
      await sleep(1)
    },
  })
  await until(() => started >= p.measure, p.timeoutMs, 'jobs to start')
  await ctx.lib.stopWorker()
  return { value: round((100 * heavy) / p.measure, 1), unit: '% to weight 3', extra: { expected: 75, measured: p.measure } }
}

/**
 * Rate limit: tenant R is limited to `rate` jobs/s (burst `burst`) and tenant U is not; both push `n`
 * jobs into the bench queue, and the Worker (1 ms handler, concurrency 10) plus Scheduler run for
 * `seconds`. Reported: R's achieved jobs/s after its burst (from the burst's end to its last start),
 * and U's jobs/s from its first start to its last (U may finish its jobs before the time is up), to
 * show the unlimited tenant keeps full speed.
 */
export async function rateLimit(ctx: CaseContext, p: { n: number; rate: number; burst: number; seconds: number }): Promise<CaseResult> {
  if (!ctx.lib.setRateLimit) throw Object.assign(new Error('no rate limits'), { notAvailable: true })
  await ctx.lib.setRateLimit('R', p.rate, p.burst)
  for (let i = 0; i < p.n; i += 1000) {
    await prefill(ctx.lib, Array.from({ length: Math.min(1000, p.n - i) }, (_, k) => ({ s: i + k, t: 'R' })))
    await prefill(ctx.lib, Array.from({ length: Math.min(1000, p.n - i) }, (_, k) => ({ s: p.n + i + k, t: 'U' })))
  }
  await ctx.analyze()
  const rStarts: number[] = []
  let uStarted = 0
  let uFirst = NaN
  let uLast = NaN
  let t0 = NaN
  await ctx.lib.startWorker({
    concurrency: 10,
    handler: async (job) => {
      if (Number.isNaN(t0)) t0 = now()
      if (job.t === 'R') rStarts.push(now())
      else {
        uStarted++
        if (Number.isNaN(uFirst)) uFirst = now()
        uLast = now()
      }
      await sleep(1)
    },
  })
  await sleep(p.seconds * 1000)
  const elapsedS = (now() - t0) / 1000
  await ctx.lib.stopWorker()
  // After the burst: the jobs beyond it over the time from the burst's end to the last start.
  const after = rStarts.slice(p.burst)
  const achieved = after.length > 1 ? (after.length - 1) / ((after.at(-1)! - after[0]!) / 1000) : NaN
  return {
    value: round(achieved, 1),
    unit: 'jobs/s (limit ' + p.rate + ')',
    extra: { limitedStarted: rStarts.length, unlimitedJobsPerSec: round(uStarted / Math.max(0.001, (uLast - uFirst) / 1000), 0), unlimitedStarted: uStarted, seconds: round(elapsedS, 1), burst: p.burst },
  }
}
