/**
 * Issue 14, items 3 and 14: input that used to reach PostgreSQL as an untyped error (or, for roles, was
 * accepted and broke isolation) is now refused up front with a typed error naming the field.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createIsolatedDatabase, type IsolatedDatabase } from '@pgqueue/testing'
import { migrate, uuidv7, PgQueueRoleSetupError, PgQueueValidationError } from '@pgqueue/core/internal'
import { initialize } from 'pgqueue'
import { createProducer, type Producer } from '@pgqueue/producer'
import { Stats } from '@pgqueue/stats'
import { AttemptCounter, reportFigure } from '../src/harness.js'

const attempts = new AttemptCounter()
let t: IsolatedDatabase
let producer: Producer
let stats: Stats

beforeAll(async () => {
  t = await createIsolatedDatabase('limits_val')
  await migrate(t.adminUrl, t.schemaOptions)
  producer = createProducer(t.userUrl, { schema: t.schema, poolSize: 1 })
  stats = Stats.create(t.workerUrl, { schema: t.schema, poolSize: 1 })
})
afterAll(async () => {
  reportFigure('limits-validation.attempts', attempts.toJSON())
  await producer?.close()
  await stats?.close()
  await t.cleanup()
})

/** Expects a PgQueueValidationError whose field ends with `field` (or the given error class). */
async function expectTyped(fn: () => unknown, field: string): Promise<void> {
  const err = await Promise.resolve().then(fn).then(() => undefined, (e: unknown) => e)
  expect(err, field).toBeInstanceOf(PgQueueValidationError)
  expect((err as PgQueueValidationError).field.endsWith(field), `${(err as PgQueueValidationError).field} vs ${field}`).toBe(true)
  attempts.add(field)
}

const cursorOf = (parts: string[]) => Buffer.from(JSON.stringify(parts), 'utf8').toString('base64url')

describe('validation gaps that reached the database', () => {
  it('schema names: too long for the notification channel, public, system schemas', async () => {
    for (const schema of ['s'.repeat(51), 's'.repeat(63), 'public', 'pg_catalog', 'information_schema', 'pg_mine']) {
      await expectTyped(() => initialize(t.adminUrl, { ...t.schemaOptions, schema }), 'schema')
    }
  })

  it('one role for worker and user is refused (item 3)', async () => {
    const err = await initialize(t.adminUrl, { ...t.schemaOptions, workerRole: t.userRole }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(PgQueueRoleSetupError)
    attempts.add('roles')
  })

  it("histogram bucket names inherited by every object ('constructor', '__proto__', 'toString')", async () => {
    const from = new Date(Date.now() - 3_600_000)
    const to = new Date()
    for (const bucket of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf']) {
      await expectTyped(() => stats.histogram({ from, to, bucket: bucket as 'hour' }), 'bucket')
      await expectTyped(() => stats.forTenant('a').histogram({ from, to, bucket: bucket as 'hour' }), 'bucket')
    }
    // Dates outside the years 1 to 9999 (PostgreSQL's range starts at 4713 BC).
    await expectTyped(() => stats.histogram({ from: new Date(-8.64e15), to, bucket: 'day' }), 'from')
    await expectTyped(() => stats.histogram({ from, to: new Date(8.64e15), bucket: 'day' }), 'to')
  })

  it('history cursors out of range, and list filters before year 1', async () => {
    const queues = producer.queues.withTenant('a')
    for (const us of ['9223372036854775807', '-9223372036854775808', '9999999999999999999', '253402300800000000', '-62135596800000001']) {
      await expectTyped(() => queues.history({ cursor: cursorOf([us, uuidv7()]) }), 'cursor')
    }
    // The edges of the range are valid positions.
    await expect(queues.history({ cursor: cursorOf(['253402300799999999', uuidv7()]) })).resolves.toMatchObject({ items: [] })
    await expect(queues.history({ cursor: cursorOf(['-62135596800000000', uuidv7()]) })).resolves.toMatchObject({ items: [] })
    await expectTyped(() => queues.history({ since: new Date(-8.64e15) }), 'since')
    await expectTyped(() => queues.list({ until: new Date('-000100-01-01T00:00:00Z') }), 'until')
    await expectTyped(() => queues.push({ queue: 'q', type: 't', runAt: new Date('0000-06-01T00:00:00Z') }), 'runAt')
  })

  it('tenant ids that are blank or differ only by invisible characters', async () => {
    for (const tenant of [' ', '\t\n', 'acme ', ' acme', 'ac\u200bme', '\ufeffacme', 'acme\u2060', 'ac\u200dme', 'ac\u0085me']) {
      await expectTyped(() => producer.queues.withTenant(tenant), 'tenantId')
      await expectTyped(() => stats.forTenant(tenant), 'tenantId')
    }
    // Visible ids, inner spaces included, still work.
    const pushed = await producer.queues.withTenant('acme corp').push({ queue: 'q', type: 't' })
    expect(pushed.outcome).toBe('created')
  })
})
