import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import pg from 'pg'
import type { IsolatedDatabase } from '@pgqueue/testing'
import { PgQueueValidationError, uuidv7 } from '@pgqueue/core/internal'
import { Schedules, type TenantSchedules } from '../src/index.js'
import { insertHistory, rows, setup } from './helpers.js'

let t: IsolatedDatabase
let userPool: pg.Pool
let schedules: Schedules
let now = new Date('2026-06-01T10:00:00.000Z')
const clock = { now: () => now }
let acme: TenantSchedules

beforeAll(async () => {
  ;({ t, userPool } = await setup('producer_sched'))
  schedules = Schedules.create(userPool, { schema: t.schema, clock })
  acme = schedules.withTenant('acme')
})
afterAll(async () => {
  await schedules?.close()
  await userPool?.end()
  await t?.cleanup()
})

describe('schedules', () => {
  it('creates a cron schedule with its next due time in its time zone', async () => {
    const s = await acme.create({ key: 'nightly', queue: 'reports', type: 'build', schedule: { cron: '0 3 * * *', timezone: 'Europe/Warsaw' }, target: { r: 1 } })
    expect(s).toMatchObject({ key: 'nightly', schedule: { cron: '0 3 * * *', timezone: 'Europe/Warsaw' }, missedPolicy: 'fire_once', paused: false, anchorAt: null })
    expect(s.nextRunAt!.toISOString()).toBe('2026-06-02T01:00:00.000Z') // 03:00 CEST
    const [row] = await rows(t, `select * from S.schedules where key = 'nightly'`)
    expect(row).toMatchObject({ tenant_id: 'acme', cron: '0 3 * * *', timezone: 'Europe/Warsaw', every_ms: null, target: { r: 1 } })
  })

  it('anchors intervals and keeps the timing when re-declared unchanged', async () => {
    const s = await acme.create({ key: 'tick', queue: 'q', type: 't', schedule: { every: '15m' }, payload: 'p' })
    expect(s.schedule).toEqual({ every: 900_000 })
    expect(s.anchorAt!.toISOString()).toBe(now.toISOString())
    expect(s.nextRunAt!.toISOString()).toBe('2026-06-01T10:15:00.000Z')
    now = new Date('2026-06-01T10:07:00.000Z')
    const again = await acme.create({ key: 'tick', queue: 'q', type: 't2', schedule: { every: '15m' } })
    expect(again).toMatchObject({ id: s.id, type: 't2', payload: null })
    expect(again.nextRunAt!.toISOString()).toBe('2026-06-01T10:15:00.000Z')
    const changed = await acme.create({ key: 'tick', queue: 'q', type: 't2', schedule: { every: '10m' } })
    expect(changed.nextRunAt!.toISOString()).toBe('2026-06-01T10:17:00.000Z')
    const started = await acme.create({ key: 'tick', queue: 'q', type: 't2', schedule: { every: '10m' }, startAt: new Date('2026-06-01T09:00:00Z') })
    expect(started.anchorAt!.toISOString()).toBe('2026-06-01T09:00:00.000Z')
    expect(started.nextRunAt!.toISOString()).toBe('2026-06-01T10:10:00.000Z')
  })

  it('pauses, resumes from now on the anchored grid, lists, gets and deletes', async () => {
    now = new Date('2026-06-01T10:00:00.000Z')
    await acme.create({ key: 'p', queue: 'q', type: 't', schedule: { every: '1h' }, startAt: new Date('2026-06-01T00:30:00Z') })
    expect((await acme.pause('p'))!.paused).toBe(true)
    now = new Date('2026-06-01T15:10:00.000Z')
    const resumed = await acme.resume('p')
    expect(resumed!.paused).toBe(false)
    expect(resumed!.nextRunAt!.toISOString()).toBe('2026-06-01T15:30:00.000Z')
    // Re-declaring without `paused` keeps the flag.
    await acme.pause('p')
    expect((await acme.create({ key: 'p', queue: 'q', type: 't', schedule: { every: '1h' } })).paused).toBe(true)
    const keys: string[] = []
    let cursor: string | null = null
    do {
      const page = await acme.list({ limit: 1, cursor })
      keys.push(...page.items.map((s) => s.key))
      cursor = page.nextCursor
    } while (cursor)
    expect(keys).toEqual(['nightly', 'p', 'tick'])
    expect((await acme.list({ queue: 'reports' })).items.map((s) => s.key)).toEqual(['nightly'])
    expect(await acme.get('p')).toMatchObject({ key: 'p', paused: true })
    expect(await acme.delete('p')).toBe(true)
    expect(await acme.get('p')).toBeNull()
    expect(await acme.resume('p')).toBeNull()
  })

  it('lists runs of a schedule: live jobs and history, newest first, paged', async () => {
    const s = (await acme.get('nightly'))!
    const ids = [uuidv7(), uuidv7(), uuidv7()]
    await insertHistory(t, { tenant: 'acme', queue: 'reports', state: 'completed', scheduleId: s.id, id: ids[0] })
    await insertHistory(t, { tenant: 'acme', queue: 'reports', state: 'failed', scheduleId: s.id, id: ids[1] })
    await t.admin.query(`insert into "${t.schema}".jobs (tenant_id, id, queue, type, state, schedule_id, run_at) values ('acme', $1, 'reports', 'build', 'scheduled', $2, now() + interval '1 hour')`, [ids[2], s.id])
    const page1 = await acme.runs('nightly', { limit: 2 })
    expect(page1.items.map((r) => [r.id, r.finished])).toEqual([[ids[2], false], [ids[1], true]])
    const page2 = await acme.runs('nightly', { limit: 2, cursor: page1.nextCursor })
    expect(page2.items.map((r) => r.id)).toEqual([ids[0]])
    expect(page2.nextCursor).toBeNull()
  })

  it('rejects bad schedules by field and writes nothing', async () => {
    const base = { key: 'bad', queue: 'q', type: 't' }
    const cases: Array<[unknown, string]> = [
      [{ ...base, schedule: { cron: 'not a cron' } }, 'schedule.cron'],
      [{ ...base, schedule: { cron: '* * * * *', timezone: 'Mars/Olympus' } }, 'schedule.timezone'],
      [{ ...base, schedule: { every: '5 parsecs' } }, 'schedule.every'],
      [{ ...base, schedule: { every: 10 } }, 'schedule.every'],
      [{ ...base, schedule: { cron: '* * * * *' }, missedPolicy: 'sometimes' }, 'missedPolicy'],
      [{ ...base, schedule: { every: '1m' }, startAt: 'tomorrow' }, 'startAt'],
      [{ ...base, schedule: { every: '1m' }, retryPolicy: { type: 'x' } }, 'retryPolicy.maxAttempts'],
      [{ ...base, key: '', schedule: { every: '1m' } }, 'key'],
      [{ ...base, schedule: { every: '1m' }, everything: 1 }, 'everything'],
    ]
    for (const [input, field] of cases) {
      const err = await acme.create(input as never).catch((e) => e)
      expect(err, field).toBeInstanceOf(PgQueueValidationError)
      expect(err.field).toBe(field)
    }
    expect(await rows(t, `select count(*)::int as n from S.schedules where key = 'bad'`)).toEqual([{ n: 0 }])
  })
})
