import { migrate, silentLogger } from '@pgqueue/core'
import { createProducer, type Producer } from '@pgqueue/producer'
import { createIsolatedDatabase, waitFor, type IsolatedDatabase } from '@pgqueue/testing'
import { Worker } from '@pgqueue/worker'

/** Two tenants' jobs: live ones with targets, one failed job each, and a schedule each. */
export interface Seeded {
  t: IsolatedDatabase
  producer: Producer
  /** acme's live job with target customer.id = 7. */
  acmeJob7: string
  acmeJob8: string
  acmeFailed: string
  globexJob: string
  globexFailed: string
  /** Whether the 'report' handler throws; flip it to let a retry complete. */
  failing: { on: boolean }
  /** A worker for the 'reports' queue (started by the seed, stopped by the test). */
  worker: Worker
}

/** A fresh schema with two tenants' jobs, for the dashboard tests. */
export async function seed(label: string): Promise<Seeded> {
  const t = await createIsolatedDatabase(label)
  await migrate(t.adminUrl, t.schemaOptions)
  const producer = createProducer(t.userUrl, { ...t.schemaOptions, logger: silentLogger })
  const acme = producer.queues.withTenant('acme')
  const globex = producer.queues.withTenant('globex')
  const [j7, j8] = await acme.pushMany([
    { queue: 'emails', type: 'send', payload: { to: 'a@example.com' }, target: { customer: { id: 7 }, region: 'eu' } },
    { queue: 'emails', type: 'send', payload: 'plain text body', target: { customer: { id: 8 }, region: 'us' } },
  ])
  const g = await globex.push({ queue: 'emails', type: 'send', payload: { secret: 'globex-only' }, target: { customer: { id: 7 } } })
  await acme.push({ queue: 'reports', type: 'report', payload: { n: 1 }, retryPolicy: { type: 'constant', delayMs: 1, maxAttempts: 1 } })
  await globex.push({ queue: 'reports', type: 'report', payload: { n: 2 }, retryPolicy: { type: 'constant', delayMs: 1, maxAttempts: 1 } })
  await producer.schedules.withTenant('acme').create({ key: 'nightly', queue: 'reports', type: 'report', schedule: { every: '1h' }, payload: { n: 3 } })
  await producer.schedules.withTenant('globex').create({ key: 'globex-hourly', queue: 'reports', type: 'report', schedule: { every: '1h' } })

  const failing = { on: true }
  const worker = Worker.create(t.workerUrl, { ...t.schemaOptions, nodeId: `${label}-w`, queues: ['reports'], pollMs: 50, logger: silentLogger }, {
    report: async (job) => {
      if (failing.on && ((job.data as { n?: number } | null)?.n ?? 0) <= 2) throw new Error('report backend unavailable')
      return { ok: true }
    },
  })
  await worker.start()
  // Some work that completes, so the overview has throughput and waits for three tenants.
  for (const tenantId of ['acme', 'globex', 'initech']) {
    await producer.queues.withTenant(tenantId).pushMany(Array.from({ length: 30 }, (_, i) => ({ queue: 'reports', type: 'report', payload: { n: 100 + i } })))
  }
  const failed = await waitFor(
    async () => {
      const r = await t.admin.query(`select tenant_id, id from "${t.schema}".job_history where state = 'failed' order by tenant_id`)
      const done = await t.admin.query(`select count(*)::int as n from "${t.schema}".job_history where state = 'completed'`)
      return r.rows.length === 2 && done.rows[0].n === 90 ? (r.rows as { tenant_id: string; id: string }[]) : undefined
    },
    { timeoutMs: 20_000, message: 'two failed jobs and 90 completed' },
  )
  return {
    t, producer, failing, worker,
    acmeJob7: j7!.id, acmeJob8: j8!.id, globexJob: g.id,
    acmeFailed: failed!.find((r) => r.tenant_id === 'acme')!.id,
    globexFailed: failed!.find((r) => r.tenant_id === 'globex')!.id,
  }
}
