import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createIsolatedDatabase, waitFor, type IsolatedDatabase } from '@pgqueue/testing'
import pgqueue, { Coordinator, PgQueueStoppedError, PgQueueValidationError, Worker } from 'pgqueue'

let t: IsolatedDatabase
beforeAll(async () => {
  t = await createIsolatedDatabase('coordinator')
  await pgqueue.initialize(t.adminUrl, t.schemaOptions)
})
afterAll(async () => {
  await t.cleanup()
})

describe('Coordinator', () => {
  it('runs the Scheduler, the ScheduleRunner and Maintenance together, then stops them all', async () => {
    const client = await pgqueue.quickstart(t.userUrl, { schema: t.schema })
    const coordinator = Coordinator.create({ worker: t.workerUrl, admin: t.adminUrl }, {
      schema: t.schema,
      scheduler: { pollMs: 50 },
      scheduleRunner: { pollIntervalMs: 50 },
    })
    const worker = Worker.create(t.workerUrl, { schema: t.schema, pollMs: 50 }, async (job) => ({ result: { type: job.type } }))
    const errors: string[] = []
    coordinator.on('error', (err, component) => errors.push(`${component}: ${err.message}`))
    try {
      await coordinator.start()
      await worker.start()
      const acme = client.queues.withTenant('acme')
      await acme.push({ queue: 'later', type: 'delayed', delay: 200 })
      await client.schedules.withTenant('acme').create({ key: 'tick', queue: 'ticks', type: 'tick', schedule: { every: '1s' } })
      // The delayed job needs the Scheduler, the schedule the ScheduleRunner.
      await waitFor(async () => (await acme.history({ queue: 'later' })).items.length === 1, { timeoutMs: 15_000, message: 'delayed job done' })
      await waitFor(async () => (await acme.history({ queue: 'ticks' })).items.length >= 1, { timeoutMs: 15_000, message: 'schedule fired' })
      // Maintenance made history partitions ahead.
      const { rows } = await t.admin.query(
        `select count(*)::int as n from pg_inherits i join pg_class c on c.oid = i.inhrelid
          join pg_namespace s on s.oid = c.relnamespace where s.nspname = $1 and c.relname <> 'job_history_default'`, [t.schema])
      expect(rows[0].n).toBeGreaterThan(0)
    } finally {
      await worker.stop()
      await coordinator.stop()
      await client.close()
    }
    expect(errors).toEqual([])
    await expect(coordinator.start()).rejects.toBeInstanceOf(PgQueueStoppedError)
  })

  it('refuses a missing worker connection and bad component options before connecting', () => {
    expect(() => Coordinator.create({} as never)).toThrow(PgQueueValidationError)
    expect(() => Coordinator.create({ worker: t.workerUrl }, { scheduler: { pollMs: -1 } })).toThrow(PgQueueValidationError)
  })
})
