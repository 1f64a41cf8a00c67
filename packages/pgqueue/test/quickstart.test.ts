import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createIsolatedDatabase, waitFor, type IsolatedDatabase } from '@pgqueue/testing'
import pgqueue from 'pgqueue'
import { Worker, Scheduler, Queues } from 'pgqueue/queues'
import { ScheduleRunner, Schedules } from 'pgqueue/schedules'
import { Maintenance } from 'pgqueue/maintenance'
import { Stats } from 'pgqueue/stats'

let t: IsolatedDatabase
beforeAll(async () => {
  t = await createIsolatedDatabase('quickstart')
  await pgqueue.initialize(t.adminUrl, t.schemaOptions)
})
afterAll(async () => {
  await t.cleanup()
})

describe('the README story through the umbrella package', () => {
  it('exposes every component from the import paths by role', () => {
    for (const c of [Worker, Scheduler, Queues, ScheduleRunner, Schedules, Maintenance, Stats]) expect(typeof c).toBe('function')
  })

  it('pushes as a tenant, processes with a worker, and shows the result in history and stats', async () => {
    const client = await pgqueue.quickstart(t.userUrl, { schema: t.schema })
    const worker = Worker.create(t.workerUrl, { schema: t.schema, nodeId: 'w1', concurrency: 4 }, async (job) => ({
      result: { echoed: job.payload?.toString('utf8'), tenant: job.tenantId, ...(job.type === 'json' ? { data: job.data } : {}) },
    }))
    const scheduler = Scheduler.create(t.workerUrl, { schema: t.schema })
    try {
      await worker.start()
      await scheduler.start()
      const acme = client.queues.withTenant('acme')
      const globex = client.queues.withTenant('globex')
      const a = await acme.push({ queue: 'emails', type: 'send', payload: Buffer.from('hi acme'), payloadType: 'text/plain', target: { to: 'a@acme' } })
      const g = await globex.push({ queue: 'emails', type: 'send', payload: Buffer.from('hi globex'), payloadType: 'text/plain', delay: 200 })
      const entries = await waitFor(async () => {
        const ha = await acme.history({ queue: 'emails' })
        const hg = await globex.history({ queue: 'emails' })
        return ha.items.length === 1 && hg.items.length === 1 ? [ha.items[0]!, hg.items[0]!] : undefined
      }, { timeoutMs: 15_000, message: 'both jobs in history' })
      expect(entries!.map((e) => [e.id, e.state])).toEqual([[a.id, 'completed'], [g.id, 'completed']])
      // Each tenant sees only its own job.
      expect((await acme.get(g.id))).toBeNull()
      // JSON in, JSON out: the handler reads it as data, the producer reads the result as resultData.
      const order = { sku: 'A-1', qty: 2 }
      const j = await acme.push({ queue: 'orders', type: 'json', payload: order })
      const seen = await waitFor(async () => {
        const e = await acme.get(j.id)
        return e?.kind === 'history' ? e : undefined
      }, { timeoutMs: 15_000, message: 'json job in history' })
      expect(seen?.resultData).toEqual({ echoed: JSON.stringify(order), tenant: 'acme', data: order })
      const stats = await client.stats.forTenant('acme').queues({ window: 3_600_000 })
      const emails = stats.find((q) => q.queue === 'emails')
      expect(emails?.completed).toBe(1)
    } finally {
      await worker.stop()
      await scheduler.stop()
      await client.close()
    }
  })
})
