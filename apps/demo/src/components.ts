import { setTimeout as sleep } from 'node:timers/promises'
import { Maintenance } from '@pgqueue/maintenance'
import { ScheduleRunner } from '@pgqueue/schedule-runner'
import { Scheduler } from '@pgqueue/scheduler'
import { Worker, type Job, type JobContext } from '@pgqueue/worker'
import type { StoryPlan } from './story.js'

/** What one worker did, from its events. */
export interface WorkerTally {
  nodeId: string
  completed: number
  retried: number
  failed: number
}

/** The background side of the story: two Workers, a Scheduler, a ScheduleRunner and Maintenance. */
export interface Components {
  tallies: WorkerTally[]
  stop(): Promise<void>
}

export interface ComponentUrls {
  workerUrl: string
  adminUrl: string
  /** The pgqueue schema every component works in. */
  schema: string
}

/**
 * The demo's job handler: sleeps like a call to a slow service, fails poison jobs always and, on the
 * flaky worker, a share of every run (the job is retried with backoff on whichever worker claims it).
 */
export function demoHandler(plan: StoryPlan, flaky: boolean) {
  return async (job: Job, ctx: JobContext) => {
    const [lo, hi] = plan.handlerMs
    await sleep(lo + Math.random() * (hi - lo), undefined, { signal: ctx.signal })
    const target = (job.target ?? {}) as { poison?: boolean }
    if (target.poison) throw new Error('poison job: the downstream service rejects it every time')
    if (flaky && Math.random() < plan.flakyRate) throw new Error(`${ctx.nodeId}: downstream timed out (simulated)`)
    return { result: { by: ctx.nodeId, attempt: job.attempt } }
  }
}

/** Starts a Worker and counts its outcomes. */
export function startWorker(url: string, schema: string, nodeId: string, plan: StoryPlan, flaky: boolean, log: (line: string) => void): { worker: Worker; tally: WorkerTally } {
  const tally: WorkerTally = { nodeId, completed: 0, retried: 0, failed: 0 }
  const worker = Worker.create(url, { schema, nodeId, concurrency: plan.concurrency, pollMs: 250 }, demoHandler(plan, flaky))
  worker.on('job:completed', () => void (tally.completed += 1))
  worker.on('job:failed', ({ willRetry }) => void (willRetry ? (tally.retried += 1) : (tally.failed += 1)))
  worker.on('error', (err) => log(`${nodeId}: ${err.message} (it keeps running)`))
  return { worker, tally }
}

/** Starts everything in this process, as the scheduler and worker services of apps/ would. */
export async function startComponents(urls: ComponentUrls, plan: StoryPlan, log: (line: string) => void): Promise<Components> {
  // Maintenance first, once, before any job finishes: history partitions for the coming days exist
  // before the first insert (rows would otherwise land in the default partition and be moved later).
  const maintenance = Maintenance.create(urls.adminUrl, { schema: urls.schema })
  const report = await maintenance.runOnce()
  const created = report.partitions?.created ?? []
  log(`maintenance: created ${created.length} daily history partitions ahead${created[0] ? ` (${created[0].name} ... ${created.at(-1)!.name})` : ''}`)
  const scheduler = Scheduler.create(urls.workerUrl, { schema: urls.schema, nodeId: 'scheduler-1', pollMs: 250 })
  const scheduleRunner = ScheduleRunner.create(urls.workerUrl, { schema: urls.schema, pollMs: 250 })
  const a = startWorker(urls.workerUrl, urls.schema, 'worker-a', plan, false, log)
  const b = startWorker(urls.workerUrl, urls.schema, 'worker-b-flaky', plan, true, log)
  const services = [maintenance, scheduler, scheduleRunner]
  for (const s of services) s.on('error', (err: Error) => log(`${s.constructor.name}: ${err.message} (it keeps running)`))
  await Promise.all([...services.map((s) => s.start()), a.worker.start(), b.worker.start()])
  log('started: Maintenance (pgqueue_admin), Scheduler, ScheduleRunner, worker-a, worker-b-flaky (pgqueue_worker_login)')
  return {
    tallies: [a.tally, b.tally],
    async stop() {
      await Promise.all([a.worker.stop(), b.worker.stop()])
      await Promise.all(services.map((s) => s.stop()))
    },
  }
}
