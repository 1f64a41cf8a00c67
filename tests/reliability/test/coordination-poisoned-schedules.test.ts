/**
 * Poisoned schedule rows (issue 14, item 7): rows the producer would refuse, written by raw SQL as the
 * admin, must cost the ScheduleRunner that schedule only. Each bad row is reported once as `invalid`
 * (naming it) and pushed ahead; every other tenant's schedule fires in the same batch, and no batch
 * fails. Each kind of row is counted for the report.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createIsolatedDatabase, type IsolatedDatabase } from '@pgqueue/testing'
import { migrate } from '@pgqueue/core'
import { ScheduleRunner, type ScheduleInvalid } from '@pgqueue/schedule-runner'
import { AttemptCounter, inSchema, reportFigure } from '../src/harness.js'

let t: IsolatedDatabase
let q: (text: string) => string
const attempts = new AttemptCounter()

/** Inserts one due schedule as the admin; `cols` override the defaults (SQL expressions). */
async function insertDue(tenant: string, key: string, cols: Record<string, string> = {}): Promise<string> {
  const values: Record<string, string> = {
    tenant_id: `'${tenant.replaceAll("'", "''")}'`,
    key: `'${key}'`,
    queue: `'q'`,
    type: `'tick'`,
    every_ms: '60000',
    anchor_at: `now() - interval '1 second'`,
    next_run_at: `now() - interval '1 second'`,
    ...cols,
  }
  const names = Object.keys(values)
  const { rows } = await t.admin.query(q(`insert into S.schedules (${names.join(', ')}) values (${names.map((n) => values[n]).join(', ')}) returning id`))
  return rows[0].id
}

beforeAll(async () => {
  t = await createIsolatedDatabase('coordpoison')
  q = inSchema(t.schema)
  await migrate(t.adminUrl, t.schemaOptions)
  // Migration 13's check constraints refuse such rows now; rows written before it, or by an owner who
  // dropped a constraint, exist anyway, and the runner must survive them.
  const { rows } = await t.admin.query(
    `select conname from pg_constraint where conrelid = $1::regclass and contype = 'c'`, [`"${t.schema}".schedules`])
  for (const { conname } of rows) await t.admin.query(q(`alter table S.schedules drop constraint "${conname}"`))
})
afterAll(async () => {
  await t?.cleanup()
})

describe('poisoned schedule rows', () => {
  it('stay with their schedule: reported and deferred, while every other tenant fires in the same batch', async () => {
    const bad: Record<string, string> = {}
    const poison = async (kind: string, cols: Record<string, string>, tenant = `p-${kind}`) => {
      attempts.add(kind)
      bad[await insertDue(tenant, kind, cols)] = kind
    }
    // Beyond what a JavaScript Date holds, and beyond year 9999.
    await poison('every-ms-2^53', { every_ms: String(2 ** 53 - 1) })
    await poison('every-ms-1e15', { every_ms: '1000000000000000' })
    // Too long for any index on jobs, even compressed: the push fails with 54000, not a data error.
    await poison('queue-8000-chars', { queue: `(select string_agg(md5(i::text), '') from generate_series(1, 250) i)` })
    await poison('cron-garbage', { every_ms: 'null', anchor_at: 'null', cron: `'not a cron'`, timezone: `'UTC'` })
    await poison('timezone-unknown', { every_ms: 'null', anchor_at: 'null', cron: `'* * * * *'`, timezone: `'Mars/Olympus'` })
    await poison('anchor-minus-infinity', { anchor_at: `'-infinity'` })
    await poison('next-run-minus-infinity', { next_run_at: `'-infinity'` })
    await poison('retry-policy-garbage', { retry_policy: `'{"type":"constant","delayMs":-1,"maxAttempts":1e9}'` })
    // push_jobs() refuses an empty tenant.
    await poison('tenant-empty', {}, '')
    const good = [await insertDue('good-1', 'tick'), await insertDue('good-2', 'tick'), await insertDue('good-3', 'tick', { every_ms: '1000' })]

    const runner = ScheduleRunner.create(t.workerUrl, { schema: t.schema, pollMs: 100, invalidRetryMs: 3_600_000 })
    const invalid: ScheduleInvalid[] = []
    const errors: Error[] = []
    runner.on('invalid', (i) => invalid.push(i))
    runner.on('error', (e) => errors.push(e))
    const first = await runner.runOnce()
    expect(first).toMatchObject({ claimed: good.length + Object.keys(bad).length, fired: good.length, invalid: Object.keys(bad).length })
    expect(invalid.map((i) => bad[i.scheduleId]).sort()).toEqual(Object.values(bad).sort())
    for (const i of invalid) expect(i.error).toBeInstanceOf(Error)
    const { rows: fired } = await t.admin.query(q(`select schedule_id from S.jobs where schedule_id is not null`))
    expect(fired.map((r) => r.schedule_id).sort()).toEqual([...good].sort())
    // Deferred by invalidRetryMs; the loop keeps serving the others without a single failed batch.
    const { rows: deferred } = await t.admin.query(q(`select count(*)::int as n from S.schedules where id = any($1) and next_run_at > now() + interval '59 minutes'`), [Object.keys(bad)])
    expect(deferred[0].n).toBe(Object.keys(bad).length)
    await runner.start()
    await new Promise((r) => setTimeout(r, 1_300))
    await runner.close()
    expect(errors).toEqual([])
    const { rows: again } = await t.admin.query(q(`select count(*)::int as n from S.jobs where schedule_id = $1`), [good[2]])
    expect(again[0].n).toBeGreaterThanOrEqual(2)
    reportFigure('coordination.poisoned-schedules', { attempts: attempts.toJSON(), reported: invalid.length, failedBatches: errors.length })
  })
})
