/**
 * Issue 14, item 9: any login could take pgqueue's advisory locks and hold them, so initialize() hung
 * and Maintenance skipped its tasks. Coordination now uses locks only pgqueue's own roles can take
 * (the migrations table, rows of the locks table); a login with no pgqueue role holding every old key
 * changes nothing, and cannot take the new ones.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import pg from 'pg'
import { createIsolatedDatabase, type IsolatedDatabase } from '@pgqueue/testing'
import { initialize } from 'pgqueue'
import { Maintenance } from '@pgqueue/maintenance'
import { AttemptCounter, reportFigure, sqlState } from '../src/harness.js'

const attempts = new AttemptCounter()
let t: IsolatedDatabase
let stranger: pg.Client
let strangerRole: string

beforeAll(async () => {
  t = await createIsolatedDatabase('limits_locks')
  strangerRole = `${t.schema}_stranger`
  await t.admin.query(`create role "${strangerRole}" login password 'pw'`)
  const u = new URL(t.adminUrl)
  u.username = strangerRole
  u.password = 'pw'
  stranger = new pg.Client({ connectionString: u.toString() })
  await stranger.connect()
})
afterAll(async () => {
  reportFigure('limits-locks.attempts', attempts.toJSON())
  await stranger?.end().catch(() => {})
  await t.admin.query(`drop role if exists "${strangerRole}"`)
  await t.cleanup()
})

describe('a login with no pgqueue role holding the old advisory keys', () => {
  it('does not stop initialize(), first install or upgrade, nor any Maintenance task', async () => {
    // Session-level, so they stay held across everything below.
    const keys = [
      `select pg_advisory_lock(hashtext('pgqueue.migrate'))`,
      `select pg_advisory_lock(hashtext('pgqueue.partitions:${t.schema}'))`,
      ...['rollup', 'liveCounts', 'nodes', 'leases'].map((task) => `select pg_advisory_lock(hashtext('pgqueue.maintenance'), hashtext('${t.schema}:${task}'))`),
    ]
    for (const k of keys) {
      await stranger.query(k)
      attempts.add('old advisory key held')
    }
    const started = performance.now()
    const first = await initialize(t.adminUrl, { ...t.schemaOptions, lockTimeoutMs: 5_000 })
    const again = await initialize(t.adminUrl, { ...t.schemaOptions, lockTimeoutMs: 5_000 })
    const initializeMs = Math.round(performance.now() - started)
    expect(first.applied.length).toBeGreaterThan(0)
    expect(again.applied).toEqual([])
    const report = await Maintenance.runOnce(t.adminUrl, { ...t.schemaOptions, tasks: { vacuum: false } })
    const skipped = Object.fromEntries((['partitions', 'retention', 'nodes', 'leases', 'rollup', 'liveCounts'] as const).map((k) => [k, (report[k] as { skipped?: string }).skipped ?? null]))
    expect(skipped).toEqual({ partitions: null, retention: null, nodes: null, leases: null, rollup: null, liveCounts: null })
    reportFigure('limits-locks.initialize-ms-with-hostile-advisory-locks', initializeMs)
  })

  it('cannot take the locks pgqueue uses now', async () => {
    const tries = [
      `lock table "${t.schema}".migrations in exclusive mode`,
      `lock table "${t.schema}".migrations in access share mode`,
      `select * from "${t.schema}".locks for update`,
      `select * from "${t.schema}".locks for share`,
      `lock table "${t.schema}".locks in access share mode`,
    ]
    for (const sqlText of tries) {
      await stranger.query('begin')
      const state = await sqlState(stranger.query(sqlText))
      await stranger.query('rollback')
      // No USAGE on the schema: the name cannot even be resolved.
      expect(state, sqlText).toBe('42501')
      attempts.add('new coordination lock')
    }
  })
})
