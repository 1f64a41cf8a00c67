import type { PushItem, TenantQueues } from '@pgqueue/producer'
import { PgQueueJobRunningError, type RetryPolicy } from '@pgqueue/core'
import type { DemoOptions } from './options.js'

/** The numbers of one run: who pushes how much, and how fast the workers chew. */
export interface StoryPlan {
  noisy: string
  quiet: string[]
  queues: readonly ['emails', 'reports']
  /** Jobs the noisy tenant dumps at once before anyone else pushes. */
  noisyBacklog: number
  /** Every tick while pushing: the noisy tenant's jobs, and each quiet tenant's. */
  noisyPerTick: number
  quietPerTick: number
  tickMs: number
  /** Push phase length. */
  pushMs: number
  /** Each handler sleeps this long (ms, uniform), like a call to a slow service. */
  handlerMs: [number, number]
  /** Worker B fails this share of its runs; the job retries on whichever worker claims it next. */
  flakyRate: number
  /** One in `poisonEvery` quiet jobs always fails, so it lands in history as failed after its attempts. */
  poisonEvery: number
  concurrency: number
  /** Applied to every (tenant, queue) with configureQueue(): quick retries, so the demo shows them. */
  retryPolicy: RetryPolicy
  schedules: { cron: string; every: string }
}

export function planStory(opts: DemoOptions): StoryPlan {
  const [noisy, ...quiet] = opts.tenants as [string, ...string[]]
  return {
    noisy,
    quiet,
    queues: ['emails', 'reports'],
    noisyBacklog: opts.short ? 1_200 : 4_000,
    noisyPerTick: opts.short ? 30 : 40,
    quietPerTick: 1,
    tickMs: 250,
    pushMs: opts.seconds * 1_000,
    handlerMs: [15, 45],
    flakyRate: 0.2,
    poisonEvery: 40,
    concurrency: 5,
    retryPolicy: { type: 'exponential', delayMs: 300, maxDelayMs: 2_000, maxAttempts: 3 },
    schedules: { cron: opts.short ? '*/3 * * * * *' : '*/5 * * * * *', every: opts.short ? '2s' : '4s' },
  }
}

/** What the producer pushed, so the end of the run can check every job reached history. */
export class PushLedger {
  readonly ids = new Set<string>()
  readonly perTenant = new Map<string, number>()
  replaced = 0
  refusedRunning = 0

  record(tenant: string, results: { id: string; outcome: string }[]): void {
    for (const r of results) {
      if (r.outcome === 'replaced') this.replaced += 1
      if (r.outcome !== 'created' && r.outcome !== 'replaced') continue
      if (!this.ids.has(r.id)) this.perTenant.set(tenant, (this.perTenant.get(tenant) ?? 0) + 1)
      this.ids.add(r.id)
    }
  }
}

let sequence = 0

/** One job as an API would push it: a type the worker dispatches on, a payload, a JSON target. */
export function makeJob(plan: StoryPlan, tenant: string, queue: 'emails' | 'reports'): PushItem {
  sequence += 1
  const poison = tenant !== plan.noisy && sequence % plan.poisonEvery === 0
  return queue === 'emails'
    ? { queue, type: 'send', payload: `hello #${sequence}`, payloadType: 'text/plain', target: { to: `user${sequence}@${tenant}.example`, poison } }
    : { queue, type: 'build', payload: null, target: { report: `r-${sequence}`, poison } }
}

/**
 * The API-style producer: the noisy tenant dumps a backlog, then every tenant keeps pushing on a
 * tick until the push phase ends. Quiet tenants also push a few delayed jobs and one keyed job they
 * keep replacing (the last version runs once they stop: a debounce).
 */
export async function runProducer(
  plan: StoryPlan,
  queuesFor: (tenant: string) => TenantQueues,
  ledger: PushLedger,
  signal: AbortSignal,
  log: (line: string) => void,
): Promise<void> {
  const noisy = queuesFor(plan.noisy)
  const backlog = Array.from({ length: plan.noisyBacklog }, () => makeJob(plan, plan.noisy, 'emails'))
  ledger.record(plan.noisy, await noisy.pushMany(backlog))
  log(`producer: ${plan.noisy} dumped a backlog of ${plan.noisyBacklog} jobs into "emails" (one pushMany)`)
  const started = Date.now()
  let tick = 0
  while (!signal.aborted && Date.now() - started < plan.pushMs) {
    tick += 1
    const pushes: Promise<void>[] = []
    const burst = Array.from({ length: plan.noisyPerTick }, () => makeJob(plan, plan.noisy, 'emails'))
    pushes.push(noisy.pushMany(burst).then((r) => ledger.record(plan.noisy, r)))
    for (const tenant of plan.quiet) {
      const q = queuesFor(tenant)
      const queue = tick % 3 === 0 ? 'reports' : 'emails'
      for (let i = 0; i < plan.quietPerTick; i++) pushes.push(q.push(makeJob(plan, tenant, queue)).then((r) => ledger.record(tenant, [r])))
      if (tick % 8 === 0) pushes.push(q.push({ ...makeJob(plan, tenant, 'emails'), delay: 1_500 }).then((r) => ledger.record(tenant, [r])))
      if (tick % 2 === 0) {
        const digest = { queue: 'emails', type: 'digest', key: 'daily-digest', payload: `digest as of tick ${tick}`, delay: 1_500 }
        // A keyed job that is running right now is not replaced under its worker: push() refuses.
        pushes.push(
          q.push(digest).then(
            (r) => ledger.record(tenant, [r]),
            (err) => {
              if (!(err instanceof PgQueueJobRunningError)) throw err
              ledger.refusedRunning += 1
            },
          ),
        )
      }
    }
    await Promise.all(pushes)
    await new Promise((r) => setTimeout(r, plan.tickMs))
  }
  log(`producer: push phase over after ${tick} ticks (${ledger.ids.size} jobs, ${ledger.replaced} keyed replacements)`)
}
