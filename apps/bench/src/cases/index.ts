import type { CaseResult, LibName } from '../types.js'
import type { CaseContext } from './context.js'
import { fairness } from './fairness.js'
import { rateLimit, weights, wrongedTenant } from './fair-order.js'
import { flowFan, flowRelease } from './flows.js'
import { latency } from './latency.js'
import { longTransaction } from './long-transaction.js'
import { processing } from './processing.js'
import { bulkPush, singlePush } from './push.js'

export type Mode = 'quick' | 'normal' | 'full'

export interface CaseDef {
  id: string
  title: string
  better: 'higher' | 'lower'
  libs: LibName[]
  /** Only with --full (slow). */
  fullOnly?: boolean
  /** Left out of --quick (what the CI test runs), which must fit its time budget; `--only` still runs it. */
  notQuick?: boolean
  /** Runs in the first repetition only, whatever --reps says (a slow case). */
  oneRep?: boolean
  params(mode: Mode): Record<string, number>
  run(ctx: CaseContext, params: Record<string, number>): Promise<CaseResult>
}

const ALL: LibName[] = ['pgqueue', 'pgqueue-node20', 'pg-boss', 'graphile-worker', 'floor']
const LIBS_ONLY: LibName[] = ['pgqueue', 'pgqueue-node20', 'pg-boss', 'graphile-worker']
const q = (mode: Mode, quick: number, normal: number): number => (mode === 'quick' ? quick : normal)

export const cases: CaseDef[] = [
  {
    id: 'single-push',
    title: 'single push, sequential awaited',
    better: 'higher',
    libs: ALL,
    params: (m) => ({ n: q(m, 300, 5_000) }),
    run: (ctx, p) => singlePush(ctx, p as { n: number }),
  },
  {
    id: 'bulk-chunks',
    title: 'bulk push, chunks of 1,000',
    better: 'higher',
    libs: ALL,
    params: (m) => ({ n: q(m, 5_000, 50_000), chunk: 1_000 }),
    run: (ctx, p) => bulkPush(ctx, p as { n: number; chunk: number }),
  },
  {
    id: 'bulk-one',
    title: 'bulk push, one call',
    better: 'higher',
    libs: ALL,
    params: (m) => ({ n: q(m, 5_000, 50_000), chunk: q(m, 5_000, 50_000) }),
    run: (ctx, p) => bulkPush(ctx, p as { n: number; chunk: number }),
  },
  {
    id: 'processing',
    title: 'processing no-op, pre-filled, concurrency 10',
    better: 'higher',
    libs: ALL,
    params: (m) => ({ n: q(m, 5_000, 50_000), tenants: 100, concurrency: 10, timeoutMs: q(m, 60_000, 300_000) }),
    run: (ctx, p) => processing(ctx, p as unknown as Parameters<typeof processing>[1]),
  },
  {
    id: 'latency',
    title: 'pickup latency, idle worker, 20 ms apart',
    better: 'lower',
    libs: LIBS_ONLY,
    params: (m) => ({ n: q(m, 40, 200), gapMs: 20, idleMs: q(m, 300, 1_000) }),
    run: (ctx, p) => latency(ctx, p as { n: number; gapMs: number; idleMs: number }),
  },
  {
    id: 'latency-new-queue',
    notQuick: true,
    title: 'pickup latency, idle worker with no queue list, a queue it has not seen, 20 ms apart',
    better: 'lower',
    libs: ['pgqueue', 'graphile-worker'],
    params: (m) => ({ n: q(m, 40, 200), gapMs: 20, idleMs: q(m, 300, 1_000), newQueue: 1 }),
    run: (ctx, p) => latency(ctx, p as { n: number; gapMs: number; idleMs: number; newQueue: number }),
  },
  {
    id: 'fairness-20k',
    title: "fairness: B's last start behind A's backlog of 20,000",
    better: 'lower',
    libs: LIBS_ONLY,
    params: (m) => ({ a: q(m, 2_000, 20_000), b: 10, handlerMs: 1, timeoutMs: q(m, 60_000, 300_000) }),
    run: (ctx, p) => fairness(ctx, p as { a: number; b: number; handlerMs: number; timeoutMs: number }),
  },
  {
    id: 'fairness-200k',
    title: "fairness: B's last start behind A's backlog of 200,000",
    better: 'lower',
    libs: LIBS_ONLY,
    fullOnly: true,
    params: () => ({ a: 200_000, b: 10, handlerMs: 1, timeoutMs: 900_000 }),
    run: (ctx, p) => fairness(ctx, p as { a: number; b: number; handlerMs: number; timeoutMs: number }),
  },
  {
    id: 'hole-priority',
    notQuick: true,
    title: "priority hole: B's last start behind A's 20,000 at priority 1 (pgqueue)",
    better: 'lower',
    libs: ['pgqueue'],
    params: (m) => ({ a: q(m, 2_000, 20_000), b: 10, queues: 1, priority: 1, timeoutMs: q(m, 60_000, 300_000) }),
    run: (ctx, p) => wrongedTenant(ctx, p as { a: number; b: number; queues: number; priority: number; timeoutMs: number }),
  },
  {
    id: 'hole-queues',
    notQuick: true,
    title: "queues hole: B's last start, A's 20,000 over 1,000 queues, Worker on every queue (pgqueue)",
    better: 'lower',
    libs: ['pgqueue'],
    params: (m) => ({ a: q(m, 2_000, 20_000), b: 10, queues: q(m, 100, 1_000), priority: 0, timeoutMs: q(m, 60_000, 300_000) }),
    run: (ctx, p) => wrongedTenant(ctx, p as { a: number; b: number; queues: number; priority: number; timeoutMs: number }),
  },
  {
    id: 'weights',
    notQuick: true,
    title: 'weights 3:1, share of weight 3 in the first jobs started, % (pgqueue)',
    better: 'higher',
    libs: ['pgqueue'],
    params: (m) => ({ n: q(m, 2_000, 10_000), measure: q(m, 1_000, 8_000), timeoutMs: q(m, 60_000, 300_000) }),
    run: (ctx, p) => weights(ctx, p as { n: number; measure: number; timeoutMs: number }),
  },
  {
    id: 'long-transaction',
    title: 'steady 3,000 jobs/s for 2 min while a REPEATABLE READ snapshot stays open',
    better: 'higher',
    libs: LIBS_ONLY,
    fullOnly: true,
    // PGQUEUE_BENCH_LONG_TX_SECONDS shortens (or lengthens) the run outside --quick, for investigations.
    params: (m) =>
      m === 'quick'
        ? { rate: 500, durationMs: 5_000, timeoutMs: 60_000 }
        : { rate: 3_000, durationMs: 1000 * Number(process.env.PGQUEUE_BENCH_LONG_TX_SECONDS || 120), timeoutMs: 300_000 },
    run: (ctx, p) => longTransaction(ctx, p as { rate: number; durationMs: number; timeoutMs: number }),
  },
  {
    id: 'flow-release',
    notQuick: true,
    title: "flow release: a child's start after its parent's handler returned, idle worker",
    better: 'lower',
    libs: ['pgqueue', 'pg-boss'],
    params: (m) => ({ n: q(m, 10, 50), gapMs: 20, idleMs: q(m, 300, 1_000) }),
    run: (ctx, p) => flowRelease(ctx, p as { n: number; gapMs: number; idleMs: number }),
  },
  {
    id: 'flow-fan',
    notQuick: true,
    title: 'flow fan-out/fan-in: root, 998 children, merge (1,000 jobs, one call); call to merge start',
    better: 'higher',
    libs: ['pgqueue', 'pg-boss'],
    params: (m) => ({ n: 998, concurrency: 10, timeoutMs: q(m, 60_000, 300_000) }),
    run: (ctx, p) => flowFan(ctx, p as { n: number; concurrency: number; timeoutMs: number }),
  },
  {
    id: 'rate-limit',
    notQuick: true,
    title: 'rate limit: achieved jobs/s of a tenant limited to 100/s beside an unlimited one (pgqueue)',
    better: 'lower',
    libs: ['pgqueue'],
    params: (m) => ({ n: q(m, 5_000, 50_000), rate: 100, burst: 20, seconds: q(m, 5, 30) }),
    run: (ctx, p) => rateLimit(ctx, p as { n: number; rate: number; burst: number; seconds: number }),
  },
  {
    id: 'scale',
    title: 'processing with 1,000,000 pending over 10,000 tenants (first 100,000 timed)',
    better: 'higher',
    libs: ['pgqueue', 'pg-boss', 'graphile-worker', 'floor'],
    // In the default run since the claim stopped slowing down with the backlog (issue 19): seeding is
    // one statement per 20,000 jobs (pgqueue: per tenant, 4 at a time), about two minutes a library.
    notQuick: true,
    oneRep: true,
    params: () => ({ n: 1_000_000, tenants: 10_000, measure: 100_000, concurrency: 10, timeoutMs: 900_000 }),
    run: (ctx, p) => processing(ctx, p as unknown as Parameters<typeof processing>[1]),
  },
]

export function caseById(id: string): CaseDef {
  const c = cases.find((x) => x.id === id)
  if (!c) throw new Error(`unknown case ${id}; known: ${cases.map((x) => x.id).join(', ')}`)
  return c
}
