import type { Stats } from '@pgqueue/stats'
import { formatMs, renderTable, type Column } from './table.js'
import type { WorkerTally } from './components.js'
import type { StoryPlan } from './story.js'

/** One tenant's line of the live table, summed over its queues (from the Stats API). */
export interface TenantRow {
  tenant: string
  pending: number
  scheduled: number
  running: number
  retrying: number
  completed: number
  failed: number
  oldestPendingAgeMs: number | null
  /** Wait from due to start in the contested queue ("emails"), from Stats.latency(). */
  waitP50: number | null
  waitP95: number | null
  measured: number
}

/** Reads every tenant's counts and its wait percentiles in the contested queue. */
export async function readTenantRows(stats: Stats, plan: StoryPlan, windowMs: number): Promise<TenantRow[]> {
  const window = Math.max(1_000, Math.ceil(windowMs))
  return Promise.all(
    [plan.noisy, ...plan.quiet].map(async (tenant) => {
      const [queues, latency] = await Promise.all([stats.queues({ tenantId: tenant, window }), stats.latency({ tenantId: tenant, window, queue: 'emails' })])
      const sum = (f: (q: (typeof queues)[number]) => number) => queues.reduce((n, q) => n + f(q), 0)
      const ages = queues.map((q) => q.oldestPendingAgeMs).filter((a): a is number => a !== null)
      const lat = latency[0]
      return {
        tenant,
        pending: sum((q) => q.pending),
        scheduled: sum((q) => q.scheduled),
        running: sum((q) => q.running),
        retrying: sum((q) => q.retrying),
        completed: sum((q) => q.completed),
        failed: sum((q) => q.failed),
        oldestPendingAgeMs: ages.length ? Math.max(...ages) : null,
        waitP50: lat && lat.count > 0 ? lat.waitMs.p50 : null,
        waitP95: lat && lat.count > 0 ? lat.waitMs.p95 : null,
        measured: lat?.count ?? 0,
      }
    }),
  )
}

const TENANT_COLUMNS = (plan: StoryPlan): Column<TenantRow>[] => [
  { header: 'tenant', cell: (r) => (r.tenant === plan.noisy ? `${r.tenant} (noisy)` : r.tenant), align: 'left' },
  { header: 'pending', cell: (r) => r.pending },
  { header: 'delayed', cell: (r) => r.scheduled },
  { header: 'running', cell: (r) => r.running },
  { header: 'retrying', cell: (r) => r.retrying },
  { header: 'done', cell: (r) => r.completed },
  { header: 'failed', cell: (r) => r.failed },
  { header: 'oldest due', cell: (r) => formatMs(r.oldestPendingAgeMs) },
  { header: 'wait p50', cell: (r) => formatMs(r.waitP50) },
  { header: 'wait p95', cell: (r) => formatMs(r.waitP95) },
]

const WORKER_COLUMNS: Column<WorkerTally>[] = [
  { header: 'worker', cell: (w) => w.nodeId, align: 'left' },
  { header: 'completed', cell: (w) => w.completed },
  { header: 'failed, retrying', cell: (w) => w.retried },
  { header: 'failed for good', cell: (w) => w.failed },
]

/** The live block: a per-tenant table from Stats and a per-worker table from Worker events. */
export function dashboardLines(title: string, plan: StoryPlan, rows: TenantRow[], tallies: WorkerTally[]): string[] {
  return [title, ...renderTable(rows, TENANT_COLUMNS(plan)), '', ...renderTable(tallies, WORKER_COLUMNS)]
}
