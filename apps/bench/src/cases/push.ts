import type { CaseResult } from '../types.js'
import { makeJobs, now, round, type CaseContext } from './context.js'

/** Single push: n sequential awaited pushes, one tenant. */
export async function singlePush(ctx: CaseContext, p: { n: number }): Promise<CaseResult> {
  const jobs = makeJobs(p.n, 1)
  for (const j of jobs.slice(0, 20)) await ctx.lib.push({ ...j, s: -1 - j.s }) // warm the pool and prepared paths
  const cpu0 = process.cpuUsage()
  const t0 = now()
  for (const j of jobs) await ctx.lib.push(j)
  const ms = now() - t0
  const cpu = process.cpuUsage(cpu0)
  return { value: round(p.n / (ms / 1000), 0), unit: 'jobs/s', extra: { ms: round(ms), clientCpuUsPerJob: round((cpu.user + cpu.system) / p.n) } }
}

/** Bulk push: n jobs, one tenant, in chunks of `chunk` awaited one after another (chunk = n: one call). */
export async function bulkPush(ctx: CaseContext, p: { n: number; chunk: number }): Promise<CaseResult> {
  const jobs = makeJobs(p.n, 1)
  await ctx.lib.pushMany(makeJobs(10, 1, -100)) // warm-up
  const cpu0 = process.cpuUsage()
  const t0 = now()
  for (let i = 0; i < jobs.length; i += p.chunk) await ctx.lib.pushMany(jobs.slice(i, i + p.chunk))
  const ms = now() - t0
  const cpu = process.cpuUsage(cpu0)
  return { value: round(p.n / (ms / 1000), 0), unit: 'jobs/s', extra: { ms: round(ms), clientCpuUsPerJob: round((cpu.user + cpu.system) / p.n) } }
}
