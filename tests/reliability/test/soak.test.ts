/**
 * Soak (PGQUEUE_LONG_TESTS=1): 1,000,000 jobs (PGQUEUE_SOAK_JOBS) through 4 worker processes and 2
 * Scheduler processes, pushed continuously with a bounded backlog. Prints throughput per 100k jobs,
 * worker RSS per interval and n_dead_tup of the live jobs table; then counts lost and duplicates.
 * Maintenance runs too (in this process, as the admin), as in a real deployment: the test cluster runs
 * with autovacuum off, and Maintenance's live-table VACUUM is what keeps dead tuples in check then.
 */
import { describe, expect, it } from 'vitest'
import { createIsolatedDatabase } from '@pgqueue/testing'
import { migrate } from '@pgqueue/core'
import { createProducer } from '@pgqueue/producer'
import { Maintenance } from '@pgqueue/maintenance'
import { Cluster, drain, Ledger, liveCount, verify } from '../src/cluster.js'
import { LONG_TESTS, reportFigure, sleep } from '../src/harness.js'

const JOBS = Number(process.env.PGQUEUE_SOAK_JOBS ?? 1_000_000)
const STEP = Math.max(1, Math.round(JOBS / 10))
const TENANTS = Array.from({ length: 10 }, (_, i) => `soak-${i}`)
const MAX_BACKLOG = 40_000
const INTERVAL_MS = 10_000

describe.runIf(LONG_TESTS)('soak (PGQUEUE_LONG_TESTS=1)', () => {
  it(`${JOBS} jobs through 4 workers and 2 schedulers: steady throughput, flat RSS, dead tuples in check`, { timeout: 3 * 3600_000 }, async () => {
    const t = await createIsolatedDatabase('soak')
    const cluster = new Cluster({ PGQ_URL: t.workerUrl, PGQ_SCHEMA: t.schema, PGQ_WORK_MS: '0', PGQ_CONCURRENCY: '50', PGQ_LEASE_MS: '30000' })
    const producer = createProducer(t.userUrl, { schema: t.schema, poolSize: 2 })
    let maintenance: Maintenance | undefined
    try {
      await migrate(t.adminUrl, t.schemaOptions)
      maintenance = Maintenance.create(t.adminUrl, { ...t.schemaOptions, vacuumEveryMs: 5_000 })
      await maintenance.start()
      for (let i = 0; i < 2; i++) cluster.spawn('scheduler', { PGQ_COMPONENTS: 'scheduler' })
      for (let i = 0; i < 4; i++) cluster.spawn('worker')
      await Promise.all(cluster.children.map((c) => c.ready))
      const clients = TENANTS.map((x) => producer.queues.withTenant(x))
      const ledger = new Ledger()
      const started = Date.now()
      let pushing = true
      const pusher = (async () => {
        while (ledger.expected.size < JOBS) {
          if ((await liveCount(t.admin, t.schema, TENANTS)) > MAX_BACKLOG) {
            await sleep(100)
            continue
          }
          await ledger.push(clients, Math.min(10_000, JOBS - ledger.expected.size), { chunk: 1000, failEvery: 1000, failAttempts: 1 })
        }
        pushing = false
      })()

      const samples: Array<Record<string, unknown>> = []
      const steps: Array<{ upTo: number; seconds: number; jobsPerSecond: number }> = []
      let lastStepAt = started
      let nextStep = STEP
      let lastSample = 0
      for (;;) {
        await sleep(1000)
        const { rows } = await t.admin.query(
          `select (select count(*) from "${t.schema}".job_history)::int as done,
                  (select n_dead_tup from pg_stat_user_tables where schemaname = $1 and relname = 'jobs')::int as dead,
                  (select n_live_tup from pg_stat_user_tables where schemaname = $1 and relname = 'jobs')::int as live`,
          [t.schema],
        )
        const { done, dead, live } = rows[0]
        while (done >= nextStep) {
          const now = Date.now()
          const seconds = (now - lastStepAt) / 1000
          steps.push({ upTo: nextStep, seconds, jobsPerSecond: Math.round(STEP / seconds) })
          reportFigure('soak step', steps[steps.length - 1])
          lastStepAt = now
          nextStep += STEP
        }
        if (Date.now() - lastSample >= INTERVAL_MS) {
          lastSample = Date.now()
          const rss = Object.fromEntries(cluster.alive('worker').map((c) => [c.name, Math.round(Number(c.stats.rss ?? 0) / 1048576)]))
          const sample = { seconds: Math.round((Date.now() - started) / 1000), done, liveTup: live, deadTup: dead, workerRssMiB: rss }
          samples.push(sample)
          reportFigure('soak sample', sample)
        }
        if (!pushing && done >= ledger.expected.size) break
      }
      await pusher
      await drain(t.admin, t.schema, TENANTS, 120_000)
      const seconds = (Date.now() - started) / 1000
      const v = await verify(t.admin, t.schema, ledger, TENANTS)
      const rssOf = (s: Record<string, unknown>) => Object.values(s.workerRssMiB as Record<string, number>)
      const early = samples[Math.min(2, samples.length - 1)]!
      const late = samples[samples.length - 1]!
      const figures = {
        jobs: v.acknowledged,
        lost: v.lost,
        duplicates: v.duplicates,
        wrongOutcome: v.wrongOutcome,
        attempts: v.attempts,
        seconds,
        jobsPerSecond: Math.round(v.inHistory / seconds),
        steps,
        rssEarlyMiB: rssOf(early),
        rssLateMiB: rssOf(late),
        maxDeadTup: Math.max(...samples.map((s) => Number(s.deadTup ?? 0))),
        componentErrors: cluster.total('errors'),
        unhandled: cluster.total('unhandled'),
      }
      reportFigure('soak result', figures)
      expect(v.lost).toBe(0)
      expect(v.duplicates).toBe(0)
      expect(v.wrongOutcome).toBe(0)
      expect(figures.unhandled).toBe(0)
      // No decay as history grows: the last tenth is at least half as fast as the first.
      if (steps.length >= 3) expect(steps[steps.length - 1]!.jobsPerSecond).toBeGreaterThan(steps[0]!.jobsPerSecond * 0.5)
      // Memory flat: no worker grew by more than 150 MiB between the early and the last sample.
      const growth = Math.max(...rssOf(late).map((r, i) => r - (rssOf(early)[i] ?? r)))
      expect(growth).toBeLessThan(150)
      // Dead tuples kept in check: never more than the backlog bound times a small factor.
      expect(figures.maxDeadTup).toBeLessThan(MAX_BACKLOG * 10)
    } finally {
      await maintenance?.stop()
      await cluster.stopAll()
      await producer.close()
      await t.cleanup()
    }
  })
})
