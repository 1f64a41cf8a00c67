import type { CaseResult } from '../types.js'
import { sleep } from '../libs/pool-runner.js'
import { now, percentile, round, until, type CaseContext } from './context.js'

/**
 * Pickup latency: an idle worker (concurrency 10), `n` jobs pushed `gapMs` apart, each timed from just
 * before its push call to the start of its handler (same process, same clock). With `newQueue`, the
 * worker is given no queue list and the timed jobs go to a queue it has never seen (libraries without
 * named queues run the plain case).
 */
export async function latency(ctx: CaseContext, p: { n: number; gapMs: number; idleMs: number; newQueue?: number }): Promise<CaseResult> {
  const q = p.newQueue ? `new-${Math.random().toString(36).slice(2, 10)}` : undefined
  const sent = new Map<number, number>()
  const lat: number[] = []
  let warm = false
  await ctx.lib.startWorker({
    concurrency: 10,
    lowLatency: true,
    ...(q ? { everyQueue: true } : {}),
    handler: (job) => {
      if (job.s < 0) warm = true
      const t = sent.get(job.s)
      if (t !== undefined) lat.push(now() - t)
    },
  })
  // One job first so every connection is open, then let the worker go idle.
  await ctx.lib.push({ s: -1, t: 't0' })
  await until(() => warm, 30_000, 'the warm-up job')
  await sleep(p.idleMs)
  const start = now()
  for (let i = 0; i < p.n; i++) {
    const due = start + i * p.gapMs
    const wait = due - now()
    if (wait > 0) await sleep(wait)
    sent.set(i, now())
    await ctx.lib.push({ s: i, t: 't0', ...(q ? { q } : {}) })
  }
  await until(() => lat.length >= p.n, 30_000, `all ${p.n} jobs to start (started ${lat.length})`)
  await ctx.lib.stopWorker()
  const sorted = [...lat].sort((a, b) => a - b)
  return {
    value: round(percentile(sorted, 50), 2),
    unit: 'ms p50',
    extra: { p95: round(percentile(sorted, 95), 2), p99: round(percentile(sorted, 99), 2), max: round(sorted.at(-1)!, 2), jobs: p.n },
  }
}
