/**
 * Bad input, property-based: every invalid input to push/pushMany/schedules.create
 * is a PgQueueValidationError naming the field and writes nothing; every valid one round-trips via get().
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { createIsolatedDatabase, type IsolatedDatabase } from '@pgqueue/testing'
import { migrate, PgQueueValidationError, type RetryPolicy } from '@pgqueue/core'
import { createProducer, type Producer, type PushItem, type ScheduleInput, type TenantQueues, type TenantSchedules } from '@pgqueue/producer'
import { inSchema, reportFigure } from '../src/harness.js'

const PAYLOAD_LIMIT = 4096
const RUNS = Number(process.env.PGQUEUE_FC_RUNS ?? 60)

let t: IsolatedDatabase
let q: (text: string) => string
let producer: Producer
let queues: TenantQueues
let schedules: TenantSchedules
let checked = { invalid: 0, valid: 0 }

async function rowCount(): Promise<number> {
  const { rows } = await t.admin.query(q(`select (select count(*) from S.jobs) + (select count(*) from S.schedules) + (select count(*) from S.queue_clocks) as n`))
  return Number(rows[0].n)
}

/** Expects `fn` to reject with a PgQueueValidationError whose field starts with `field`, and nothing written. */
async function expectRejected(fn: () => Promise<unknown>, field: string): Promise<void> {
  const before = await rowCount()
  const err = await fn().then(() => undefined, (e: unknown) => e)
  expect(err, `expected a validation error for ${field}`).toBeInstanceOf(PgQueueValidationError)
  expect((err as PgQueueValidationError).field.startsWith(field), `field ${(err as PgQueueValidationError).field} vs ${field}`).toBe(true)
  expect(await rowCount()).toBe(before)
  checked.invalid += 1
}

// ---- arbitraries -------------------------------------------------------------------------------

/** Valid names: full unicode graphemes, quotes, backslashes; no NUL; 1..max characters. */
const name = (max: number) =>
  fc.oneof(
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 }),
    fc.constantFrom(`a'b`, `a\\b`, `"; drop table jobs; --`, '%', '_', '🦀🚀', 'e\u0301'),
    fc.string({ unit: 'grapheme-ascii', minLength: max - 2, maxLength: max }),
  ).filter((s) => s.length >= 1 && s.length <= max && !s.includes('\u0000'))

const json = fc.jsonValue().filter((v) => !JSON.stringify(v).includes('\\u0000'))

const retryPolicy: fc.Arbitrary<RetryPolicy> = fc.oneof(
  fc.record({ type: fc.constant('exponential' as const), delayMs: fc.integer({ min: 0, max: 60_000 }), maxAttempts: fc.integer({ min: 1, max: 1000 }) }),
  fc.record({ type: fc.constant('linear' as const), delayMs: fc.integer({ min: 0, max: 60_000 }), maxAttempts: fc.integer({ min: 1, max: 1000 }), jitter: fc.double({ min: 0, max: 1, noNaN: true }) }),
  fc.record({ type: fc.constant('constant' as const), delayMs: fc.integer({ min: 0, max: 60_000 }), maxAttempts: fc.integer({ min: 1, max: 1000 }) }),
)

const validItem: fc.Arbitrary<PushItem> = fc.record(
  {
    queue: name(128),
    type: name(128),
    key: fc.option(name(512), { nil: undefined }),
    payload: fc.option(fc.oneof(fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)), fc.string({ unit: 'grapheme', maxLength: 32 })), { nil: undefined }),
    payloadType: fc.option(name(255), { nil: undefined }),
    target: fc.option(json, { nil: undefined }),
    priority: fc.option(fc.integer({ min: -1_000_000, max: 1_000_000 }), { nil: undefined }),
    delay: fc.option(fc.integer({ min: 0, max: 10 * 365 * 24 * 3600 * 1000 }), { nil: undefined }),
    retryPolicy: fc.option(retryPolicy, { nil: undefined }),
  },
  { requiredKeys: ['queue', 'type'] },
)

/** Per field: values that must be rejected. */
const badValues: Record<string, fc.Arbitrary<unknown>> = {
  queue: fc.oneof(fc.constant(''), fc.constant('a\u0000'), fc.string({ minLength: 129, maxLength: 200 }), fc.integer(), fc.constant(null), fc.object()),
  type: fc.oneof(fc.constant(''), fc.constant('\u0000'), fc.string({ minLength: 129, maxLength: 200 }), fc.boolean(), fc.constant(undefined)),
  key: fc.oneof(fc.constant(''), fc.constant('k\u0000'), fc.string({ minLength: 513, maxLength: 600 }), fc.integer(), fc.array(fc.string(), { minLength: 1 })),
  // Any JSON value is a payload (stored as application/json); what JSON cannot carry, or too much, is not.
  payload: fc.oneof(fc.constant(() => 1), fc.constant(Symbol('p')), fc.constant({ n: Number.NaN }), fc.constant([1n]),
    fc.constant({ big: 'x'.repeat(PAYLOAD_LIMIT) }), fc.constant(Buffer.alloc(PAYLOAD_LIMIT + 1)), fc.constant('x'.repeat(PAYLOAD_LIMIT + 1))),
  payloadType: fc.oneof(fc.constant(''), fc.constant('t\u0000'), fc.string({ minLength: 256, maxLength: 300 }), fc.integer()),
  target: fc.oneof(
    fc.constant(() => 1),
    fc.constant(Symbol('s')),
    fc.constant(10n),
    fc.constant({ n: Number.NaN }),
    fc.constant([Number.POSITIVE_INFINITY]),
    fc.constant({ s: 'nul\u0000' }),
    fc.constant((() => { const o: Record<string, unknown> = {}; o.self = o; return o })()),
  ),
  priority: fc.oneof(fc.double({ noInteger: true }), fc.integer({ min: 1_000_001 }), fc.integer({ max: -1_000_001 }), fc.constant('1'), fc.constant(Number.NaN)),
  delay: fc.oneof(fc.integer({ max: -1 }), fc.double({ noInteger: true, min: 0.01, max: 1e6 }), fc.constant(Number.NaN), fc.constant(11 * 365 * 24 * 3600 * 1000), fc.constant('5s')),
  runAt: fc.oneof(fc.constant(new Date(Number.NaN)), fc.constant('2030-01-01'), fc.integer()),
  retryPolicy: fc.oneof(
    fc.constant('exponential'),
    fc.record({ type: fc.constant('fibonacci'), delayMs: fc.constant(1), maxAttempts: fc.constant(1) }),
    fc.record({ type: fc.constant('constant'), delayMs: fc.integer({ max: -1 }), maxAttempts: fc.constant(1) }),
    fc.record({ type: fc.constant('constant'), delayMs: fc.constant(1), maxAttempts: fc.integer({ max: 0 }) }),
    fc.record({ type: fc.constant('exponential'), delayMs: fc.constant(1000), maxAttempts: fc.constant(3), factor: fc.constantFrom(1, 0, 11, Number.NaN) }),
    fc.record({ type: fc.constant('linear'), delayMs: fc.constant(1000), maxAttempts: fc.constant(3), maxDelayMs: fc.constant(10) }),
  ),
}
const corruptible = Object.keys(badValues)

const invalidItem = fc.tuple(validItem, fc.constantFrom(...corruptible)).chain(([item, field]) =>
  badValues[field]!.map((bad) => ({ item: { ...item, ...(field === 'runAt' ? { delay: undefined } : {}), [field]: bad } as PushItem, field })),
)

function expectRoundTrip(item: PushItem, job: Record<string, unknown>, pushedAt: number): void {
  expect(job.queue).toBe(item.queue)
  expect(job.type).toBe(item.type)
  expect(job.key).toBe(item.key ?? null)
  const bytes = item.payload === undefined || item.payload === null ? null : Buffer.from(item.payload as Buffer | string)
  expect(job.payload === null ? null : Buffer.from(job.payload as Buffer)).toEqual(bytes)
  const defaultType = typeof item.payload === 'string' ? 'text/plain; charset=utf-8' : null
  expect(job.payloadType).toBe(item.payloadType ?? defaultType)
  expect(job.target).toEqual(item.target === undefined || item.target === null ? null : JSON.parse(JSON.stringify(item.target)))
  expect(job.priority).toBe(item.priority ?? 0)
  if (item.retryPolicy) {
    expect(job.retryPolicy).toMatchObject({ type: item.retryPolicy.type, delayMs: item.retryPolicy.delayMs, maxAttempts: item.retryPolicy.maxAttempts })
    expect(job.maxAttempts).toBe(item.retryPolicy.maxAttempts)
  }
  if (item.delay !== undefined && item.delay > 0) {
    const runAt = (job.runAt as Date).getTime()
    expect(runAt).toBeGreaterThanOrEqual(pushedAt + item.delay - 5)
    expect(runAt).toBeLessThanOrEqual(Date.now() + item.delay + 5)
  }
}

beforeAll(async () => {
  t = await createIsolatedDatabase('props')
  q = inSchema(t.schema)
  await migrate(t.adminUrl, t.schemaOptions)
  producer = createProducer(t.userUrl, { schema: t.schema, poolSize: 2, payloadLimitBytes: PAYLOAD_LIMIT })
  queues = producer.queues.withTenant('props')
  schedules = producer.schedules.withTenant('props')
})

afterAll(async () => {
  reportFigure('properties inputs checked', checked)
  await producer?.close()
  await t?.cleanup()
})

describe('push and pushMany', () => {
  it('reject every invalid item with a typed error naming the field, writing nothing', async () => {
    await fc.assert(
      fc.asyncProperty(invalidItem, async ({ item, field }) => {
        await expectRejected(() => queues.push(item), `item.${field}`)
      }),
      { numRuns: RUNS * 3 },
    )
  })

  it('pushMany writes nothing when any one item is invalid', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(validItem, { minLength: 1, maxLength: 5 }), invalidItem, fc.nat(), async (good, { item, field }, at) => {
        const index = at % (good.length + 1)
        const items = [...good.slice(0, index), item, ...good.slice(index)]
        await expectRejected(() => queues.pushMany(items), `items[${index}].${field}`)
      }),
      { numRuns: RUNS },
    )
  })

  it('round-trips every valid item through get()', async () => {
    await fc.assert(
      fc.asyncProperty(validItem, async (item) => {
        const pushedAt = Date.now()
        const pushed = await queues.push(item)
        expect(['created', 'replaced']).toContain(pushed.outcome)
        const job = await queues.get(pushed.id)
        expect(job).not.toBeNull()
        expectRoundTrip(item, job as unknown as Record<string, unknown>, pushedAt)
        if (item.key) expect((await queues.get({ queue: item.queue, key: item.key }))?.id).toBe(pushed.id)
        checked.valid += 1
      }),
      { numRuns: RUNS * 2 },
    )
  })

  it('round-trips pushMany batches, in order', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(validItem.map((i) => ({ ...i, key: undefined })), { minLength: 1, maxLength: 20 }), async (items) => {
        const pushedAt = Date.now()
        const pushed = await queues.pushMany(items)
        expect(pushed).toHaveLength(items.length)
        for (const [i, r] of pushed.entries()) {
          const job = await queues.get(r.id)
          expectRoundTrip(items[i]!, job as unknown as Record<string, unknown>, pushedAt)
        }
        checked.valid += items.length
      }),
      { numRuns: Math.ceil(RUNS / 3) },
    )
  })
})

// ---- schedules ---------------------------------------------------------------------------------

const zones = Intl.supportedValuesOf('timeZone')
const validSchedule: fc.Arbitrary<ScheduleInput> = fc.record(
  {
    key: name(512),
    queue: name(128),
    type: name(128),
    schedule: fc.oneof(
      fc.record({ cron: fc.constantFrom('* * * * *', '0 3 * * *', '*/5 * * * *', '30 2 * * 0', '0 0 1 * *', '15 14 1 * *'), timezone: fc.constantFrom(...zones) }),
      fc.record({ every: fc.oneof(fc.integer({ min: 1000, max: 365 * 86_400_000 }), fc.constantFrom('1s', '15m', '1h30m', '2d', '1w')) }),
    ),
    payload: fc.option(fc.uint8Array({ maxLength: 32 }).map((a) => Buffer.from(a)), { nil: undefined }),
    target: fc.option(json, { nil: undefined }),
    priority: fc.option(fc.integer({ min: -1_000_000, max: 1_000_000 }), { nil: undefined }),
    missedPolicy: fc.option(fc.constantFrom('fire_once' as const, 'skip' as const), { nil: undefined }),
    paused: fc.option(fc.boolean(), { nil: undefined }),
    retryPolicy: fc.option(retryPolicy, { nil: undefined }),
  },
  { requiredKeys: ['key', 'queue', 'type', 'schedule'] },
)

const badSchedule: Record<string, fc.Arbitrary<unknown>> = {
  key: badValues.key!,
  queue: badValues.queue!,
  type: badValues.type!,
  schedule: fc.oneof(
    fc.record({ cron: fc.constantFrom('', 'not cron', '61 * * * *', '* * * * * * * *', '0 25 * * *') }),
    fc.record({ cron: fc.constant('* * * * *'), timezone: fc.constantFrom('Mars/Olympus', 'UTC+99', '', 'Europe/Warsaw\u0000') }),
    fc.record({ every: fc.oneof(fc.integer({ max: 999 }), fc.constantFrom('5x', '', 'soon', '-5m', 1.5, Number.NaN)) }),
    fc.constant({ cron: '* * * * *', every: '1h' }),
    fc.constant({}),
    fc.constant('0 3 * * *'),
  ),
  target: badValues.target!,
  priority: badValues.priority!,
  missedPolicy: fc.constantFrom('sometimes', '', 1),
  startAt: badValues.runAt!,
  paused: fc.constantFrom('yes', 1),
  retryPolicy: badValues.retryPolicy!,
  unknownField: fc.constant(1),
}

describe('schedules.create', () => {
  it('rejects every invalid schedule with a typed error naming the field, writing nothing', async () => {
    await fc.assert(
      fc.asyncProperty(
        validSchedule,
        fc.constantFrom(...Object.keys(badSchedule)).chain((field) => badSchedule[field]!.map((bad) => ({ field, bad }))),
        async (input, { field, bad }) => {
          await expectRejected(() => schedules.create({ ...input, [field]: bad } as ScheduleInput), field)
        },
      ),
      { numRuns: RUNS * 2 },
    )
  })

  it('round-trips every valid schedule through get()', async () => {
    await fc.assert(
      fc.asyncProperty(validSchedule, async (input) => {
        await schedules.delete(input.key)
        const created = await schedules.create(input)
        const got = await schedules.get(input.key)
        expect(got).toEqual(created)
        expect(got).toMatchObject({ key: input.key, queue: input.queue, type: input.type, priority: input.priority ?? 0, missedPolicy: input.missedPolicy ?? 'fire_once', paused: input.paused ?? false })
        expect(got!.target).toEqual(input.target === undefined || input.target === null ? null : JSON.parse(JSON.stringify(input.target)))
        if ('cron' in input.schedule) expect(got!.schedule).toEqual({ cron: input.schedule.cron, timezone: input.schedule.timezone })
        else expect('every' in got!.schedule).toBe(true)
        expect(got!.nextRunAt!.getTime()).toBeGreaterThan(Date.now() - 1000)
        checked.valid += 1
      }),
      { numRuns: RUNS },
    )
  })
})

describe('edges found by hand (values that pass the type checks but not PostgreSQL)', () => {
  // BUG (producer): runAt is checked for being a valid Date but not for PostgreSQL's timestamptz range
  // (4713 BC .. 294276 AD; JS Dates reach 271821 BC), so PostgreSQL answers 22008 "timestamp out of range"
  // instead of a PgQueueValidationError('item.runAt'). Same for schedules' startAt. Fix: bound runAt/startAt
  // in validatePushItem and TenantSchedules.validate (e.g. years 1..9999).
  it('a runAt outside PostgreSQL timestamptz range is a typed error, not a database error', async () => {
    await expectRejected(() => queues.push({ queue: 'edge', type: 't', runAt: new Date(-8.64e15) }), 'item.runAt')
  })

  // BUG (core parseSchedule): { every } has a minimum but no maximum; every = Number.MAX_SAFE_INTEGER gives an
  // Invalid Date next_run_at and PostgreSQL answers 22007 "invalid input syntax for type timestamp". Fix: cap
  // every (e.g. at 100 years) in parseSchedule with PgQueueValidationError('schedule.every').
  it('an interval too large for a due time is a typed error, not a database error', async () => {
    await expectRejected(() => schedules.create({ key: 'huge', queue: 'edge', type: 't', schedule: { every: Number.MAX_SAFE_INTEGER } }), 'schedule.every')
  })

  // BUG (core validateName): a string with a lone UTF-16 surrogate is not valid Unicode; node-postgres sends
  // it as U+FFFD, so the key stored is not the key given, and two different keys ('k\ud800', 'k\udbff')
  // become the same key: the second push silently replaces the first job. Fix: reject names that are not
  // well-formed (String.prototype.isWellFormed, Node 20+) in validateName and validateTenantId.
  it('a lone UTF-16 surrogate in a key is rejected or stored exactly', async () => {
    const key = 'k\ud800'
    const err = await queues.push({ queue: 'edge', type: 't', key }).then(() => undefined, (e: unknown) => e)
    if (err) {
      expect(err).toBeInstanceOf(PgQueueValidationError)
      return
    }
    const job = await queues.get({ queue: 'edge', key })
    expect(job?.key).toBe(key)
  })

  it('two keys that differ only in lone surrogates are two jobs', async () => {
    const first = await queues.push({ queue: 'edge2', type: 't', key: 'k\ud800' }).catch((e: unknown) => e)
    const second = await queues.push({ queue: 'edge2', type: 't', key: 'k\udbff' }).catch((e: unknown) => e)
    if (first instanceof PgQueueValidationError && second instanceof PgQueueValidationError) return
    expect((second as { outcome: string }).outcome).toBe('created')
  })

  // BUG (core serializeJson): JSON.stringify writes a lone surrogate as the escape \udc00, which jsonb refuses
  // (22P02 "invalid input syntax for type json"): a database error instead of PgQueueValidationError('item.target').
  // Fix: in serializeJson, reject strings that are not well-formed (or test the text for unpaired \ud800-\udfff escapes).
  it('a lone surrogate inside a JSON target is a typed error or round-trips', async () => {
    const target = { s: 'x\udc00' }
    const res = await queues.push({ queue: 'edge3', type: 't', target }).then((r) => r, (e: unknown) => e)
    if (res instanceof Error) {
      expect(res).toBeInstanceOf(PgQueueValidationError)
      return
    }
    expect((await queues.get((res as { id: string }).id))?.target).toEqual(target)
  })
})
