import { readFileSync } from 'node:fs'
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
  const server0 = await ctx.serverCounters()
  const machine0 = machineBusyUs()
  const cpu0 = process.cpuUsage()
  const t0 = now()
  await ctx.lib.startWorker({ concurrency: p.concurrency, handler: () => void done++ })
  await until(() => done >= measure, p.timeoutMs, `${measure} jobs to run (ran ${done})`)
  if (measure >= p.n) await until(async () => (await ctx.lib.remaining()) === 0, 30_000, 'the live table to empty', 20)
  const ms = now() - t0
  const cpu = process.cpuUsage(cpu0)
  const machine = machineBusyUs() - machine0
  await ctx.lib.stopWorker()
  const server1 = await ctx.serverCounters()
  // Per job; the Worker's and Scheduler's idle polls during the flush waits are a rounding error.
  const perJob = Object.fromEntries(Object.keys(server1).map((k) => [`${k}PerJob`, round((server1[k]! - (server0[k] ?? 0)) / measure, 2)]))
  return {
    value: round(measure / (ms / 1000), 0),
    unit: 'jobs/s',
    extra: { ms: round(ms), jobs: measure, pending: p.n, tenants: p.tenants, clientCpuUsPerJob: round((cpu.user + cpu.system) / measure),
      ...(machine > 0 ? { machineCpuUsPerJob: round(machine / measure) } : {}), ...perJob },
  }
}

/**
 * CPU time the whole machine spent busy, in microseconds (Linux /proc/stat; 0 elsewhere). Divided by
 * jobs it gives client + server + background work (WAL writer, autovacuum) per job, which a noisy host
 * distorts far less than jobs/s. Other processes on the host are included, so compare libraries
 * measured in the same run.
 */
function machineBusyUs(): number {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number)
    // user nice system idle iowait irq softirq steal: busy = all but idle, iowait and steal.
    const busy = f[0]! + f[1]! + f[2]! + f[5]! + f[6]!
    return (busy * 1_000_000) / 100
  } catch {
    return 0
  }
}
