import type { CaseResult } from '../types.js'
import { sleep } from '../libs/pool-runner.js'
import { makeJobs, now, prefill, round, until, type CaseContext } from './context.js'

/**
 * Fairness: tenant A pushes `a` jobs, the worker starts (1 ms handler, concurrency 10) and runs A for a
 * moment, then tenant B pushes `b` jobs into the same queue. Reported: when B's last job starts, in ms
 * after B's push call began, and how many A jobs started between B's push and B's last finish.
 * Peers have no tenants: A and B are a payload field in one queue, which is exactly their FIFO behaviour.
 */
export async function fairness(ctx: CaseContext, p: { a: number; b: number; handlerMs: number; timeoutMs: number }): Promise<CaseResult> {
  await prefill(ctx.lib, makeJobs(p.a, 1, 0, 'A'))
  await ctx.analyze()
  let aStarted = 0
  let tB = Infinity
  let aAfterB = 0
  let bStarted = 0
  let bFinished = 0
  let lastBStart = NaN
  await ctx.lib.startWorker({
    concurrency: 10,
    handler: async (job) => {
      if (job.t.startsWith('B')) {
        bStarted++
        if (bStarted === p.b) lastBStart = now()
      } else {
        aStarted++
        if (now() >= tB && bFinished < p.b) aAfterB++
      }
      await sleep(p.handlerMs)
      if (job.t.startsWith('B')) bFinished++
    },
  })
  // Let A's backlog get going before B arrives.
  await until(() => aStarted >= 100, 60_000, 'A to start')
  await sleep(100)
  const aBeforeBPush = aStarted
  tB = now()
  await ctx.lib.pushMany(makeJobs(p.b, 1, p.a, 'B'))
  const pushMs = now() - tB
  let timedOut = false
  try {
    await until(() => bFinished >= p.b, p.timeoutMs, "B's jobs", 2)
  } catch {
    timedOut = true
  }
  await ctx.lib.stopWorker()
  if (timedOut) {
    return { value: NaN, unit: 'ms', extra: { timedOut: true, timeoutMs: p.timeoutMs, aAfterB, bStarted, backlog: p.a } }
  }
  return {
    value: round(lastBStart - tB, 1),
    unit: 'ms',
    extra: { aStartedBetweenBPushAndBDone: aAfterB, aStartedBeforeBPush: aBeforeBPush, bPushMs: round(pushMs, 1), backlog: p.a },
  }
}
