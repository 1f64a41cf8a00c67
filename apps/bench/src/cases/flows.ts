import type { BenchFlowNode, CaseResult } from '../types.js'
import { sleep } from '../libs/pool-runner.js'
import { now, percentile, round, until, type CaseContext } from './context.js'

function notAvailable(): never {
  throw Object.assign(new Error('no flows'), { notAvailable: true })
}

/**
 * Release latency: an idle worker (concurrency 10), `n` two-job flows (parent -> child) created `gapMs`
 * apart. Headline (every library): per child, ms from its parent's handler returning to the child's
 * handler starting, same process and clock. Where the library exposes it (pgqueue), also ms from the
 * parent's finish as recorded (history finished_at) to the child's start (started_at), database clock.
 */
export async function flowRelease(ctx: CaseContext, p: { n: number; gapMs: number; idleMs: number }): Promise<CaseResult> {
  const lib = ctx.lib
  if (!lib.flow) notAvailable()
  const parentEnd = new Map<number, number>()
  const handlerGaps: number[] = []
  let warm = false
  await lib.startWorker({
    concurrency: 10,
    lowLatency: true,
    handler: (job) => {
      if (job.s < 0) {
        warm = true
        return
      }
      if (job.s % 2 === 0) parentEnd.set(job.s, now())
      else {
        const t = parentEnd.get(job.s - 1)
        if (t !== undefined) handlerGaps.push(now() - t)
      }
    },
  })
  await lib.push({ s: -1, t: 't0' })
  await until(() => warm, 30_000, 'the warm-up job')
  await sleep(p.idleMs)
  const start = now()
  for (let i = 0; i < p.n; i++) {
    const wait = start + i * p.gapMs - now()
    if (wait > 0) await sleep(wait)
    await lib.flow('t0', [
      { ref: 'parent', job: { s: 2 * i, t: 't0' } },
      { ref: 'child', dependsOn: ['parent'], job: { s: 2 * i + 1, t: 't0' } },
    ])
  }
  await until(() => handlerGaps.length >= p.n, 60_000, `all ${p.n} children to start (started ${handlerGaps.length})`)
  await until(async () => (await lib.remaining()) === 0, 30_000, 'the last completions')
  await lib.stopWorker()
  const hs = [...handlerGaps].sort((a, b) => a - b)
  const gaps = lib.flowReleaseGaps ? (await lib.flowReleaseGaps()).sort((a, b) => a - b) : undefined
  return {
    value: round(percentile(hs, 50), 2),
    unit: 'ms p50',
    extra: {
      p95: round(percentile(hs, 95), 2),
      ...(gaps ? { recordedToStartP50: round(percentile(gaps, 50), 2), recordedToStartP95: round(percentile(gaps, 95), 2) } : {}),
      flows: p.n,
    },
  }
}

/**
 * Fan-out/fan-in: one flow of a root, `n` children of the root and a merge waiting for all of them,
 * created in one call; timed from the call to the merge's start. Reported as jobs/s over the n + 2 jobs.
 */
export async function flowFan(ctx: CaseContext, p: { n: number; concurrency: number; timeoutMs: number }): Promise<CaseResult> {
  const lib = ctx.lib
  if (!lib.flow) notAvailable()
  let mergedAt = 0
  await lib.startWorker({
    concurrency: p.concurrency,
    handler: (job) => {
      if (job.s === p.n + 1) mergedAt = now()
    },
  })
  const children = Array.from({ length: p.n }, (_, i): BenchFlowNode => ({ ref: `c${i}`, dependsOn: ['root'], job: { s: i + 1, t: 't0' } }))
  const start = now()
  await lib.flow('t0', [
    { ref: 'root', job: { s: 0, t: 't0' } },
    ...children,
    { ref: 'merge', dependsOn: children.map((c) => c.ref), job: { s: p.n + 1, t: 't0' } },
  ])
  await until(() => mergedAt > 0, p.timeoutMs, 'the merge to start')
  const seconds = (mergedAt - start) / 1000
  await until(async () => (await lib.remaining()) === 0, 30_000, 'the merge to finish')
  await lib.stopWorker()
  return { value: round((p.n + 2) / seconds, 0), unit: 'jobs/s', extra: { ms: round(seconds * 1000, 1), children: p.n } }
}
