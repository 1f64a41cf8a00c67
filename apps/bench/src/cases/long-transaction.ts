import type { CaseResult } from '../types.js'
import { sleep } from '../libs/pool-runner.js'
import { now, percentile, round, until, type CaseContext } from './context.js'

/**
 * A steady load while another session holds a REPEATABLE READ snapshot open for the whole run (what a
 * long report query does): VACUUM can then remove no row version newer than that snapshot, so every
 * finished job leaves dead tuples behind, in the live table and in its indexes. Jobs are pushed at
 * `rate` per second in ticks of 10 ms for `durationMs`, a worker (concurrency 10) runs them, and each
 * is timed from its push to its handler's start. Reports the jobs/s completed over the run (equal to
 * the rate when the library keeps up), the pickup percentiles, the backlog left when the pushing stops,
 * and the dead tuples the library's tables hold at the end.
 * The producer's shape, the same for every library: each tick's jobs belong to 10 tenants, and each
 * tenant's share goes in a request of its own, all 10 at once (as a multi-tenant API service pushes for
 * its callers: separate requests over one pool), so at 3,000 jobs/s that is 1,000 calls of 3 jobs per
 * second, and the case measures the queue rather than one sequential loop. The libraries without
 * tenants get the same calls, one tenant's jobs each. A tick waits for its calls before the next one.
 */
export async function longTransaction(ctx: CaseContext, p: { rate: number; durationMs: number; timeoutMs: number }): Promise<CaseResult> {
  const sent = new Map<number, number>()
  const lat: number[] = []
  let done = 0
  await ctx.lib.startWorker({
    concurrency: 10,
    lowLatency: true,
    handler: (job) => {
      const t = sent.get(job.s)
      if (t !== undefined) {
        lat.push(now() - t)
        sent.delete(job.s)
      }
      done++
    },
  })
  // PGQUEUE_BENCH_LONG_TX_NO_SNAPSHOT=1: the same load without the snapshot, the baseline to compare with.
  const release = process.env.PGQUEUE_BENCH_LONG_TX_NO_SNAPSHOT === '1' ? async () => {} : await ctx.holdSnapshot()
  let pushed = 0
  const t0 = now()
  try {
    const perTick = p.rate / 100
    for (let tick = 0; now() - t0 < p.durationMs; tick++) {
      const due = t0 + tick * 10
      const wait = due - now()
      if (wait > 0) await sleep(wait)
      // Fractional rates spread evenly: push the whole jobs owed by this tick.
      const owed = Math.floor((tick + 1) * perTick) - pushed
      if (owed <= 0) continue
      const at = now()
      const byTenant = new Map<string, { s: number; t: string }[]>()
      for (let i = 0; i < owed; i++) {
        const j = { s: pushed + i, t: `t${(pushed + i) % 10}` }
        sent.set(j.s, at)
        const list = byTenant.get(j.t)
        if (list) list.push(j)
        else byTenant.set(j.t, [j])
      }
      await Promise.all([...byTenant.values()].map((jobs) => ctx.lib.pushMany(jobs)))
      pushed += owed
    }
    const pushMs = now() - t0
    const doneAtEnd = done
    const backlog = pushed - doneAtEnd
    const deadTuples = await ctx.deadTuples()
    await until(() => done >= pushed, p.timeoutMs, `the backlog of ${pushed - done} jobs to drain`)
    const sorted = [...lat].sort((a, b) => a - b)
    return {
      value: round(doneAtEnd / (pushMs / 1000), 0),
      unit: 'jobs/s',
      extra: {
        rate: p.rate,
        seconds: round(pushMs / 1000),
        pushed,
        backlogAtEnd: backlog,
        p50: round(percentile(sorted, 50), 2),
        p99: round(percentile(sorted, 99), 2),
        max: round(sorted.at(-1)!, 2),
        deadTuples,
      },
    }
  } finally {
    await release()
    await ctx.lib.stopWorker()
  }
}
