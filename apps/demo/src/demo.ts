import pg from 'pg'
import pgqueue from 'pgqueue'
import { createProducer } from '@pgqueue/producer'
import { Stats } from '@pgqueue/stats'
import { startComponents, type Components } from './components.js'
import { dashboardLines, readTenantRows, type TenantRow } from './dashboard.js'
import type { DemoDatabase } from './database.js'
import type { DemoOptions } from './options.js'
import { planStory, PushLedger, runProducer } from './story.js'
import { formatMs, LiveBlock, renderTable } from './table.js'
import { serveWebDashboard } from './web-dashboard.js'

/** How the run ended; the exit code is 0 only when `ok`. */
export interface DemoOutcome {
  ok: boolean
  pushed: number
  inHistory: number
  fromSchedules: number
}

/**
 * The project's story, in one process: initialize as the admin, an API-style producer (user role, row-level
 * security) pushing for several tenants, one of them noisy; a cron and an interval schedule; a Scheduler,
 * a ScheduleRunner, Maintenance and two Workers (one flaky); a live table from the Stats API; then a
 * drain, a check that every pushed job reached history, and a fairness summary.
 */
export async function runDemo(db: DemoDatabase, opts: DemoOptions, signal: AbortSignal): Promise<DemoOutcome> {
  const plan = planStory(opts)
  const live = new LiveBlock()
  const log = (line: string) => live.log(`${new Date().toISOString().slice(11, 23)}  ${line}`)

  const migrated = await pgqueue.initialize(db.adminUrl, { schema: opts.schema })
  log(`initialize() as pgqueue_admin: schema "${migrated.schema}" at version ${migrated.version}`)

  // The producer side connects as pgqueue_app: every call runs inside one tenant, enforced by PostgreSQL.
  const producer = createProducer(db.userUrl, { schema: opts.schema, poolSize: 8, tenantSecret: migrated.tenantSecret })
  const web = await serveWebDashboard({ workerUrl: db.workerUrl, userUrl: db.userUrl, schema: opts.schema, tenantSecret: migrated.tenantSecret })
  process.stdout.write(`web dashboard: ${web.url}\n`)
  log(`web dashboard (operator mode, every tenant): ${web.url}`)
  const tenants = [plan.noisy, ...plan.quiet]
  for (const tenant of tenants) {
    for (const queue of plan.queues) await producer.queues.withTenant(tenant).configureQueue(queue, { retryPolicy: plan.retryPolicy })
  }
  const cronTenant = plan.quiet[0]!
  const everyTenant = plan.quiet[1] ?? plan.quiet[0]!
  await producer.schedules.withTenant(cronTenant).create({ key: 'sales-report', queue: 'reports', type: 'build', schedule: { cron: plan.schedules.cron, timezone: 'Europe/Warsaw' } })
  await producer.schedules.withTenant(everyTenant).create({ key: 'inbox-sync', queue: 'emails', type: 'sync', schedule: { every: plan.schedules.every } })
  log(`schedules: ${cronTenant}/sales-report cron "${plan.schedules.cron}" (Europe/Warsaw), ${everyTenant}/inbox-sync every ${plan.schedules.every}`)

  let components: Components | undefined
  const stats = Stats.create(db.workerUrl, { schema: opts.schema })
  const startedAt = Date.now()
  let rows: TenantRow[] = []
  let peakNoisyBacklog = 0
  let phase = 'pushing'
  const refresh = async (force = false) => {
    rows = await readTenantRows(stats, plan, Date.now() - startedAt + 5_000)
    const noisy = rows.find((r) => r.tenant === plan.noisy)
    if (noisy) peakNoisyBacklog = Math.max(peakNoisyBacklog, noisy.pending)
    const title = `t+${((Date.now() - startedAt) / 1000).toFixed(1)} s  ${phase}  (Stats API as pgqueue_worker_login; done/failed = in history)`
    live.draw(dashboardLines(title, plan, rows, components?.tallies ?? []), force)
  }
  const ledger = new PushLedger()
  const ticker = setInterval(() => void refresh().catch((err) => log(`stats: ${(err as Error).message}`)), Math.max(250, opts.refreshMs || 2_000))

  try {
    components = await startComponents({ workerUrl: db.workerUrl, adminUrl: db.adminUrl, schema: opts.schema }, plan, log)
    await runProducer(plan, (t) => producer.queues.withTenant(t), ledger, signal, log)

    // Stop the schedules so the queue can drain, then wait until no tenant has live jobs.
    await producer.schedules.withTenant(cronTenant).delete('sales-report')
    await producer.schedules.withTenant(everyTenant).delete('inbox-sync')
    phase = 'draining (schedules deleted, producer stopped)'
    log('schedules deleted; waiting for the workers to drain every queue')
    const deadline = Date.now() + (opts.short ? 30_000 : 120_000)
    for (;;) {
      if (signal.aborted) break
      const live = await liveJobs(db.workerUrl, opts.schema, tenants)
      if (live === 0) break
      if (Date.now() > deadline) {
        log(`gave up waiting: ${live} jobs still live`)
        break
      }
      await new Promise((r) => setTimeout(r, 250))
    }
    phase = 'done'
  } finally {
    clearInterval(ticker)
    await components?.stop()
    await producer.close()
  }
  await refresh(true)

  const check = await checkHistory(db.workerUrl, opts.schema, [...ledger.ids], tenants)
  const elapsedMs = Date.now() - startedAt
  printSummary(plan, rows, ledger, check, peakNoisyBacklog, elapsedMs)
  await stats.close()
  if (opts.stay && !signal.aborted) {
    process.stdout.write(`web dashboard still at ${web.url}; Ctrl-C to stop\n`)
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))
  }
  await web.close()
  const ok = !signal.aborted && check.inHistory === ledger.ids.size && check.live === 0
  process.stdout.write(
    ok
      ? `OK: all ${ledger.ids.size} pushed jobs and ${check.fromSchedules} scheduled runs reached history (${formatMs(elapsedMs)})\n`
      : `FAILED: ${check.inHistory} of ${ledger.ids.size} pushed jobs reached history, ${check.live} still live\n`,
  )
  return { ok, pushed: ledger.ids.size, inHistory: check.inHistory, fromSchedules: check.fromSchedules }
}

async function liveJobs(url: string, schema: string, tenants: string[]): Promise<number> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const { rows } = await client.query<{ n: number }>(`select count(*)::int as n from ${pg.escapeIdentifier(schema)}.jobs where tenant_id = any($1)`, [tenants])
    return rows[0]!.n
  } finally {
    await client.end()
  }
}

/** Counts the pushed ids found in history, schedule-fired runs, and what is still live. */
async function checkHistory(url: string, schema: string, ids: string[], tenants: string[]) {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  const s = pg.escapeIdentifier(schema)
  try {
    const found = await client.query<{ n: number }>(`select count(distinct id)::int as n from ${s}.job_history where id = any($1::uuid[])`, [ids])
    const scheduled = await client.query<{ n: number }>(`select count(*)::int as n from ${s}.job_history where tenant_id = any($1) and schedule_id is not null`, [tenants])
    const live = await client.query<{ n: number }>(`select count(*)::int as n from ${s}.jobs where tenant_id = any($1)`, [tenants])
    return { inHistory: found.rows[0]!.n, fromSchedules: scheduled.rows[0]!.n, live: live.rows[0]!.n }
  } finally {
    await client.end()
  }
}

function printSummary(
  plan: ReturnType<typeof planStory>,
  rows: TenantRow[],
  ledger: PushLedger,
  check: { inHistory: number; fromSchedules: number },
  peakNoisyBacklog: number,
  elapsedMs: number,
): void {
  const out = (line = '') => process.stdout.write(`${line}\n`)
  out()
  out('Summary: wait from due to start in queue "emails", where every tenant competes with the noisy one')
  out('(completed and failed include the runs fired by schedules; pushed counts what the producer pushed)')
  for (const line of renderTable(rows, [
    { header: 'tenant', cell: (r) => (r.tenant === plan.noisy ? `${r.tenant} (noisy)` : r.tenant), align: 'left' },
    { header: 'pushed', cell: (r) => ledger.perTenant.get(r.tenant) ?? 0 },
    { header: 'completed', cell: (r) => r.completed },
    { header: 'failed', cell: (r) => r.failed },
    { header: 'measured', cell: (r) => r.measured },
    { header: 'wait p50', cell: (r) => formatMs(r.waitP50) },
    { header: 'wait p95', cell: (r) => formatMs(r.waitP95) },
  ]))
    out(`  ${line}`)
  const noisy = rows.find((r) => r.tenant === plan.noisy)
  const quiet = rows.filter((r) => r.tenant !== plan.noisy && r.waitP95 !== null)
  const worstQuietP95 = quiet.length ? Math.max(...quiet.map((r) => r.waitP95!)) : null
  const completed = rows.reduce((n, r) => n + r.completed + r.failed, 0)
  const rate = completed / (elapsedMs / 1000)
  out()
  out(`The noisy tenant's backlog peaked at ${peakNoisyBacklog} due jobs; the workers finished about ${rate.toFixed(0)} jobs/s.`)
  if (peakNoisyBacklog > 0 && rate > 0) {
    out(`In a FIFO queue a quiet tenant's job pushed at that peak would have waited about ${formatMs((peakNoisyBacklog / rate) * 1000)}.`)
  }
  if (worstQuietP95 !== null && noisy?.waitP95 != null) {
    out(`Here: quiet tenants' p95 wait is at most ${formatMs(worstQuietP95)}; the noisy tenant's own p95 is ${formatMs(noisy.waitP95)}.`)
    out(worstQuietP95 < noisy.waitP95 ? 'Fair: the backlog delays only the tenant that made it.' : 'Note: the quiet tenants did not wait less than the noisy one in this run.')
  }
  out(`History: ${check.inHistory} of ${ledger.ids.size} pushed jobs (${ledger.replaced} keyed replacements kept their id, ${ledger.refusedRunning} refused while running), plus ${check.fromSchedules} runs fired by the schedules.`)
}
