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
      scheduleRunner: { pollMs: 50 },
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

describe('start() with a wrong login or before initialize()', () => {
  it('rejects with the fix in the message, for every long-running component', async () => {
    const { Scheduler, ScheduleRunner, Maintenance } = await import('pgqueue')
    const cases: Array<[string, { start(): Promise<void>; stop(): Promise<void> }, RegExp]> = [
      ['Worker, user login', Worker.create(t.userUrl, { schema: t.schema, nodeId: 'w-wrong' }, async () => undefined), /Worker w-wrong: this login is a member of the user role .* connect as a member of the worker role/],
      ['Scheduler, user login', Scheduler.create(t.userUrl, { schema: t.schema }), /Scheduler: this login is a member of the user role/],
      ['ScheduleRunner, user login', ScheduleRunner.create(t.userUrl, { schema: t.schema }), /ScheduleRunner: this login is a member of the user role/],
      ['Maintenance, worker login', Maintenance.create(t.workerUrl, { schema: t.schema }), /Maintenance: this login is a member of the worker role .* connect as the schema owner/],
      ['Worker, no schema', Worker.create(t.workerUrl, { schema: 'pgq_not_here', nodeId: 'w-none' }, async () => undefined), /not installed in schema "pgq_not_here" .* run pgqueue.initialize/],
    ]
    for (const [label, component, message] of cases) {
      await expect(component.start(), label).rejects.toThrow(message)
      await component.stop()
    }
  })

  it('still starts when the database cannot be reached, reporting and retrying instead', async () => {
    const w = Worker.create('postgres://nobody@127.0.0.1:1/none', { schema: t.schema, nodeId: 'w-away', pollMs: 50 }, async () => undefined)
    const errors: Error[] = []
    w.on('error', (e) => errors.push(e))
    await w.start()
    await waitFor(() => errors.length > 0, { message: 'an error event' })
    await w.stop()
  })
})
