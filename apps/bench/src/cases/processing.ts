import type { CaseResult } from '../types.js'
import { makeJobs, now, prefill, round, until, type CaseContext } from './context.js'

/**
 * Processing: n pre-filled no-op jobs over `tenants` tenants, one worker with concurrency 10, timed from
 * starting the worker until `measure` jobs have run (and, when measure = n, until no live job is left,
 * so batched completions are counted). The scale case is the same with 1,000,000 over 10,000 tenants,
 * timing the first `measure` jobs.
 */
export async function processing(ctx: CaseContext, p: { n: number; tenants: number; measure?: number; concurrency: number; timeoutMs: number }): Promise<CaseResult> {
  const measure = p.measure ?? p.n
  await prefill(ctx.lib, makeJobs(p.n, p.tenants))
  await ctx.analyze()
  let done = 0
  const cpu0 = process.cpuUsage()
  const t0 = now()
  await ctx.lib.startWorker({ concurrency: p.concurrency, handler: () => void done++ })
  await until(() => done >= measure, p.timeoutMs, `${measure} jobs to run (ran ${done})`)
  if (measure >= p.n) await until(async () => (await ctx.lib.remaining()) === 0, 30_000, 'the live table to empty', 20)
  const ms = now() - t0
  const cpu = process.cpuUsage(cpu0)
  await ctx.lib.stopWorker()
  return {
    value: round(measure / (ms / 1000), 0),
    unit: 'jobs/s',
    extra: { ms: round(ms), jobs: measure, pending: p.n, tenants: p.tenants, clientCpuUsPerJob: round((cpu.user + cpu.system) / measure) },
  }
}
