import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createIsolatedDatabase, type IsolatedDatabase } from '@pgqueue/testing'
import { listHistoryPartitions, connect, migrate, uuidv7, PgQueueValidationError, type Clock } from '@pgqueue/core/internal'
import { Maintenance, PgQueueMaintenanceError, type MaintenanceReport, type TableHealth } from '@pgqueue/maintenance'

/** A clock tests move by hand. */
function manualClock(iso: string): Clock & { set(iso: string): void; add(ms: number): void } {
  let now = new Date(iso).getTime()
  return { now: () => new Date(now), set: (s) => void (now = new Date(s).getTime()), add: (ms) => void (now += ms) }
}

const DAY = 86_400_000
const housekeepingOff = { nodes: false, leases: false, vacuum: false }

async function partitionNames(t: IsolatedDatabase): Promise<string[]> {
  const conn = connect(t.adminUrl, { max: 1 })
  try {
    return (await listHistoryPartitions(conn.db, t.schemaOptions)).map((p) => p.name)
  } finally {
    await conn.close()
  }
}

async function insertHistory(t: IsolatedDatabase, rows: { finishedAt: string; tenant?: string }[]): Promise<void> {
  for (const r of rows) {
    await t.admin.query(
      `insert into "${t.schema}".job_history (tenant_id, id, queue, type, state, attempt, max_attempts, created_at, run_at, finished_at)
       values ($1, $2, 'q', 't', 'completed', 1, 1, $3, $3, $3)`,
      [r.tenant ?? 'a', uuidv7(), r.finishedAt],
    )
  }
}

async function rowsByPartition(t: IsolatedDatabase): Promise<Record<string, number>> {
  const { rows } = await t.admin.query(
    `select tableoid::regclass::text as part, count(*)::int as n from "${t.schema}".job_history group by 1`,
  )
  return Object.fromEntries(rows.map((r) => [r.part.replace(/^.*\./, '').replace(/"/g, ''), r.n]))
}

describe('history partitions and retention', () => {
  let t: IsolatedDatabase
  beforeAll(async () => {
    t = await createIsolatedDatabase('maint_parts')
    await migrate(t.adminUrl, t.schemaOptions)
  })
  afterAll(async () => {
    await t.cleanup()
  })

  it('creates the current partition and 7 days ahead, moving rows from the default partition', async () => {
    // Rows that arrived before any partition existed: today, in 3 days, and 40 days ago (past retention).
    await insertHistory(t, [
      { finishedAt: '2030-03-10T08:00:00Z' },
      { finishedAt: '2030-03-13T23:59:59Z' },
      { finishedAt: '2030-01-29T10:00:00Z' },
    ])
    const clock = manualClock('2030-03-10T12:00:00Z')
    const report = await Maintenance.runOnce(t.adminUrl, { ...t.schemaOptions, clock, tasks: housekeepingOff })
    expect(report.errors).toEqual([])
    expect(await partitionNames(t)).toEqual([
      'job_history_p20300310', 'job_history_p20300311', 'job_history_p20300312', 'job_history_p20300313',
      'job_history_p20300314', 'job_history_p20300315', 'job_history_p20300316', 'job_history_p20300317',
    ])
    expect(report.partitions!.created).toHaveLength(8)
    expect(report.partitions!.movedRows).toBe(2)
    // The row past the retention had no partition to drop: deleted from the default partition.
    expect(report.retention!.defaultRowsDeleted).toBe(1)
    expect(await rowsByPartition(t)).toEqual({ job_history_p20300310: 1, job_history_p20300313: 1 })

    // Idempotent: a second run creates nothing.
    const again = await Maintenance.runOnce(t.adminUrl, { ...t.schemaOptions, clock, tasks: housekeepingOff })
    expect(again.partitions!.created).toEqual([])
    expect(again.retention!.removed).toEqual([])
  })

  it('deletes the nodes and edges of flows finished before the retention, and keeps the others', async () => {
    const s = `"${t.schema}"`
    const node = (flow: string, id: string, state: string, finished: string | null) =>
      t.admin.query(`insert into ${s}.flow_nodes (tenant_id, id, flow_id, ref, queue, type, state, finished_at) values ('acme', $1::uuid, $2, $5, 'q', 't', $3, $4)`,
        [id, flow, state, finished, id.slice(-2)])
    const old = '01900000-0000-7000-8000-000000000001'
    const recent = '01900000-0000-7000-8000-000000000002'
    const open = '01900000-0000-7000-8000-000000000003'
    await node(old, '01900000-0000-7000-8000-0000000000a1', 'completed', '2030-01-01T00:00:00Z')
    await node(old, '01900000-0000-7000-8000-0000000000a2', 'failed', '2030-01-02T00:00:00Z')
    await t.admin.query(`insert into ${s}.flow_edges values ('acme', '01900000-0000-7000-8000-0000000000a1', '01900000-0000-7000-8000-0000000000a2')`)
    await node(recent, '01900000-0000-7000-8000-0000000000b1', 'completed', '2030-03-09T00:00:00Z')
    await node(open, '01900000-0000-7000-8000-0000000000c1', 'completed', '2030-01-01T00:00:00Z')
    await node(open, '01900000-0000-7000-8000-0000000000c2', 'waiting', null)
    const clock = manualClock('2030-03-10T12:00:00Z')
    const report = await Maintenance.runOnce(t.adminUrl, { ...t.schemaOptions, clock, tasks: housekeepingOff })
    expect(report.retention!.flowsDeleted).toBe(1)
    const left = await t.admin.query(`select flow_id, count(*)::int as n from ${s}.flow_nodes group by 1 order by 1`)
    expect(left.rows).toEqual([{ flow_id: recent, n: 1 }, { flow_id: open, n: 2 }])
    expect((await t.admin.query(`select count(*)::int as n from ${s}.flow_edges`)).rows[0].n).toBe(0)
  })

  it('creates partitions for stray rows within the retention, and drops partitions past it', async () => {
    // Maintenance was down for 40 days; a row finished 20 days ago (no partition: the default caught it).
    const clock = manualClock('2030-04-19T12:00:00Z')
    await insertHistory(t, [{ finishedAt: '2030-03-30T06:00:00Z' }, { finishedAt: '2030-03-30T07:00:00Z' }])
    const report = await Maintenance.runOnce(t.adminUrl, { ...t.schemaOptions, clock, tasks: housekeepingOff })
    expect(report.errors).toEqual([])
    // Cutoff 2030-03-20T12:00Z: every partition up to [03-17, 03-18) ended before it, rows included.
    expect(report.retention!.removed.map((p) => p.name)).toEqual([
      'job_history_p20300310', 'job_history_p20300311', 'job_history_p20300312', 'job_history_p20300313',
      'job_history_p20300314', 'job_history_p20300315', 'job_history_p20300316', 'job_history_p20300317',
    ])
    expect(await partitionNames(t)).toEqual([
      'job_history_p20300330',
      'job_history_p20300419', 'job_history_p20300420', 'job_history_p20300421', 'job_history_p20300422',
      'job_history_p20300423', 'job_history_p20300424', 'job_history_p20300425', 'job_history_p20300426',
    ])
    expect(report.partitions!.movedRows).toBe(2)
    expect(await rowsByPartition(t)).toEqual({ job_history_p20300330: 2 })
    const { rows } = await t.admin.query(`select count(*)::int as n from pg_tables where schemaname = $1 and tablename like 'job_history_p203003%'`, [t.schema])
    expect(rows[0].n).toBe(1) // dropped, not left behind
  })

  it('deletes expired default-partition rows in bounded batches', async () => {
    const rows = Array.from({ length: 25 }, (_, i) => ({ finishedAt: new Date(Date.UTC(2030, 0, 1, 0, i)).toISOString() }))
    await insertHistory(t, rows)
    const clock = manualClock('2030-04-19T12:00:00Z')
    const opts = { ...t.schemaOptions, clock, tasks: housekeepingOff, defaultPurgeBatchSize: 10, defaultPurgeMaxBatches: 2 }
    const first = await Maintenance.runOnce(t.adminUrl, opts)
    expect(first.retention!.defaultRowsDeleted).toBe(20)
    const second = await Maintenance.runOnce(t.adminUrl, opts)
    expect(second.retention!.defaultRowsDeleted).toBe(5)
    expect((await rowsByPartition(t)).job_history_default).toBeUndefined()
  })

  it('detaches instead of dropping with retentionMode detach, and honours weekly granularity', async () => {
    const w = await createIsolatedDatabase('maint_week')
    try {
      await migrate(w.adminUrl, w.schemaOptions)
      const clock = manualClock('2030-03-13T12:00:00Z') // a Wednesday
      const opts = { ...w.schemaOptions, clock, tasks: housekeepingOff, partitionGranularity: 'week' as const, partitionsAhead: 2, retentionMs: 14 * DAY, retentionMode: 'detach' as const }
      await Maintenance.runOnce(w.adminUrl, opts)
      expect(await partitionNames(w)).toEqual(['job_history_p20300311', 'job_history_p20300318', 'job_history_p20300325'])
      clock.add(28 * DAY) // 2030-04-10, cutoff 2030-03-27: the weeks of 03-11 and 03-18 expire
      const report = await Maintenance.runOnce(w.adminUrl, opts)
      expect(report.retention!.removed.map((p) => p.name)).toEqual(['job_history_p20300311', 'job_history_p20300318'])
      const { rows } = await w.admin.query(`select tablename from pg_tables where schemaname = $1 and tablename in ('job_history_p20300311', 'job_history_p20300318') order by 1`, [w.schema])
      expect(rows.map((r) => r.tablename)).toEqual(['job_history_p20300311', 'job_history_p20300318'])
      expect(await partitionNames(w)).toEqual(['job_history_p20300325', 'job_history_p20300408', 'job_history_p20300415', 'job_history_p20300422'])
    } finally {
      await w.cleanup()
    }
  })

  it('gives up on a drop that would wait for a long reader, and drops on the next run', async () => {
    const clock = manualClock('2030-05-01T00:00:00Z')
    const opts = { ...t.schemaOptions, clock, tasks: housekeepingOff, partitionsAhead: 0, ddlLockTimeoutMs: 200 }
    await Maintenance.runOnce(t.adminUrl, opts)
    clock.add(40 * DAY)
    const reader = await t.admin.connect()
    try {
      await reader.query('begin')
      await reader.query(`select count(*) from "${t.schema}".job_history`)
      const blocked = await Maintenance.runOnce(t.adminUrl, { ...opts, tasks: { ...housekeepingOff, partitions: false } })
      expect(blocked.retention!.skipped).toBe('lock-timeout')
      expect(await partitionNames(t)).toContain('job_history_p20300501')
    } finally {
      await reader.query('rollback')
      reader.release()
    }
    const report = await Maintenance.runOnce(t.adminUrl, opts)
    expect(report.retention!.skipped).toBeUndefined()
    expect(report.retention!.removed.map((p) => p.name)).toContain('job_history_p20300501')
  })

  it('gives the roles no privilege on new partitions even with default privileges set', async () => {
    await t.admin.query(`alter default privileges in schema "${t.schema}" grant select on tables to "${t.workerRole}", "${t.userRole}"`)
    try {
      const clock = manualClock('2030-08-01T00:00:00Z')
      const report = await Maintenance.runOnce(t.adminUrl, { ...t.schemaOptions, clock, tasks: housekeepingOff, partitionsAhead: 0 })
      expect(report.partitions!.created.map((p) => p.name)).toEqual(['job_history_p20300801'])
      const { rows } = await t.admin.query(`select has_table_privilege($1, $2, 'select') as w, has_table_privilege($3, $2, 'select') as u`, [
        t.workerRole, `"${t.schema}".job_history_p20300801`, t.userRole,
      ])
      expect(rows[0]).toEqual({ w: false, u: false })
    } finally {
      await t.admin.query(`alter default privileges in schema "${t.schema}" revoke select on tables from "${t.workerRole}", "${t.userRole}"`)
    }
  })
})

describe('several instances at once', () => {
  it('create each partition exactly once, without errors', async () => {
    const t = await createIsolatedDatabase('maint_conc')
    try {
      await migrate(t.adminUrl, t.schemaOptions)
      await insertHistory(t, [{ finishedAt: '2031-06-02T10:00:00Z' }, { finishedAt: '2031-05-20T10:00:00Z' }])
      const clock = manualClock('2031-06-01T00:00:00Z')
      const instances = Array.from({ length: 4 }, () => Maintenance.create(t.adminUrl, { ...t.schemaOptions, clock, poolSize: 1 }))
      const reports = await Promise.all(instances.map((m) => m.runOnce()))
      await Promise.all(instances.map((m) => m.close()))
      const created = reports.flatMap((r) => r.partitions!.created.map((p) => p.name)).sort()
      expect(created).toEqual([
        'job_history_p20310520', 'job_history_p20310601', 'job_history_p20310602', 'job_history_p20310603',
        'job_history_p20310604', 'job_history_p20310605', 'job_history_p20310606', 'job_history_p20310607', 'job_history_p20310608',
      ])
      expect(reports.reduce((n, r) => n + r.partitions!.movedRows, 0)).toBe(2)
      // Whoever did not get the lock skipped, or found the work done.
      for (const r of reports) if (r.partitions!.created.length === 0) expect([undefined, 'locked']).toContain(r.partitions!.skipped)
      expect(await rowsByPartition(t)).toEqual({ job_history_p20310520: 1, job_history_p20310602: 1 })
    } finally {
      await t.cleanup()
    }
  })
})

describe('housekeeping', () => {
  let t: IsolatedDatabase
  const onlyHousekeeping = { partitions: false, retention: false, vacuum: false }
  beforeAll(async () => {
    t = await createIsolatedDatabase('maint_house')
    await migrate(t.adminUrl, t.schemaOptions)
  })
  afterAll(async () => {
    await t.cleanup()
  })

  it('deletes node records whose heartbeat is stale', async () => {
    await t.admin.query(`insert into "${t.schema}".nodes (node_id, kind, heartbeat_at) values
      ('gone', 'worker', now() - interval '2 hours'), ('alive', 'worker', now() - interval '10 seconds')`)
    const report = await Maintenance.runOnce(t.adminUrl, { ...t.schemaOptions, tasks: onlyHousekeeping })
    expect(report.nodes!.deleted).toEqual(['gone'])
    const { rows } = await t.admin.query(`select node_id from "${t.schema}".nodes`)
    expect(rows).toEqual([{ node_id: 'alive' }])
  })

  it('rescues leases expired long ago: retry when attempts are left, failed history when spent, recent ones untouched', async () => {
    const ids = { retry: uuidv7(), spent: uuidv7(), recent: uuidv7() }
    await t.admin.query(
      `insert into "${t.schema}".jobs (tenant_id, id, queue, type, state, attempt, max_attempts, lease_owner, lease_expires_at, started_at, run_at)
       values ('a', $1, 'q', 't', 'running', 1, 3, 'w1', now() - interval '10 minutes', now() - interval '20 minutes', now() - interval '20 minutes'),
              ('a', $2, 'q', 't', 'running', 3, 3, 'w1', now() - interval '10 minutes', now() - interval '20 minutes', now() - interval '20 minutes'),
              ('b', $3, 'q', 't', 'running', 1, 3, 'w2', now() - interval '1 minute', now() - interval '2 minutes', now() - interval '2 minutes')`,
      [ids.retry, ids.spent, ids.recent],
    )
    const report = await Maintenance.runOnce(t.adminUrl, { ...t.schemaOptions, tasks: onlyHousekeeping })
    expect(report.leases).toEqual({ rescued: 1, failed: 1, cancelled: 0 })
    const { rows: live } = await t.admin.query(
      `select id, state, lease_owner, lease_expires_at, vt, run_at <= now() as due, last_error->>'code' as code from "${t.schema}".jobs order by id`,
    )
    expect(live).toEqual([
      { id: ids.retry, state: 'scheduled', lease_owner: null, lease_expires_at: null, vt: null, due: true, code: 'LEASE_EXPIRED' },
      expect.objectContaining({ id: ids.recent, state: 'running', lease_owner: 'w2' }),
    ])
    const { rows: hist } = await t.admin.query(`select id, state, attempt, worker_id, error->>'code' as code from "${t.schema}".job_history`)
    expect(hist).toEqual([{ id: ids.spent, state: 'failed', attempt: 3, worker_id: 'w1', code: 'LEASE_EXPIRED' }])
  })

  it('records a job whose cancel was requested as cancelled when its lease expired, with the one error record', async () => {
    const id = uuidv7()
    await t.admin.query(
      `insert into "${t.schema}".jobs (tenant_id, id, queue, type, state, attempt, max_attempts, lease_owner, lease_expires_at, started_at, run_at, cancel_requested)
       values ('c', $1, 'q', 't', 'running', 1, 3, 'node/1/abc', now() - interval '10 minutes', now() - interval '20 minutes', now() - interval '20 minutes', true)`,
      [id],
    )
    const report = await Maintenance.runOnce(t.adminUrl, { ...t.schemaOptions, tasks: onlyHousekeeping })
    expect(report.leases).toEqual({ rescued: 0, failed: 0, cancelled: 1 })
    const { rows: live } = await t.admin.query(`select 1 from "${t.schema}".jobs where id = $1`, [id])
    expect(live).toEqual([])
    const { rows: hist } = await t.admin.query(`select state, attempt, worker_id, error from "${t.schema}".job_history where id = $1`, [id])
    expect(hist).toEqual([{ state: 'cancelled', attempt: 1, worker_id: 'node/1', error: { message: 'lease expired', name: 'LeaseExpiredError', code: 'LEASE_EXPIRED', attempt: 1, at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/) } }])
  })

  it('vacuums the live table when dead tuples pile up, and reports its health', async () => {
    const c = await t.admin.connect()
    try {
      await c.query(`insert into "${t.schema}".jobs (tenant_id, queue, type, state) select 'v', 'q', 't', 'scheduled' from generate_series(1, 5000)`)
      await c.query(`delete from "${t.schema}".jobs where tenant_id = 'v'`)
      await c.query('select pg_stat_force_next_flush()')
    } finally {
      c.release()
    }
    const m = Maintenance.create(t.adminUrl, { ...t.schemaOptions, tasks: { partitions: false, retention: false, nodes: false, leases: false }, vacuumDeadTuples: 1000 })
    const healths: TableHealth[] = []
    m.on('tableHealth', (h) => healths.push(h))
    try {
      const report = await m.runOnce()
      expect(report.vacuum!.vacuumed).toBe(true)
      expect(report.vacuum!.health!.deadTuples).toBeGreaterThanOrEqual(5000)
      expect(report.vacuum!.health!.deadRatio).toBeGreaterThan(0.5)
      expect(healths).toHaveLength(1)
      expect(healths[0]!.table).toBe('jobs')
      expect(healths[0]!.tableBytes).toBeGreaterThan(0)
      // After the vacuum: the dead tuples are gone, and the next check does not vacuum again. A
      // transaction of another test file in the same database can keep them for a moment (VACUUM
      // keeps what an open snapshot may still see): then the next runs vacuum again.
      let after = await m.runOnce()
      for (let i = 0; i < 50 && after.vacuum!.health!.deadTuples >= 1000; i++) {
        await new Promise((r) => setTimeout(r, 100))
        after = await m.runOnce()
      }
      expect(after.vacuum!.health!.deadTuples).toBeLessThan(1000)
      expect(after.vacuum!.health!.lastVacuumAt).toBeInstanceOf(Date)
      expect(after.vacuum!.vacuumed).toBe(false)
    } finally {
      await m.close()
    }
  })

  it('loops with start()/stop(), emitting reports, and reports failures as error events', async () => {
    const clock = manualClock('2032-01-01T00:00:00Z')
    const m = Maintenance.create(t.adminUrl, { ...t.schemaOptions, clock, housekeepingEveryMs: 100, vacuumEveryMs: 100 })
    const reports: MaintenanceReport[] = []
    m.on('report', (r) => reports.push(r))
    await m.start()
    await new Promise<void>((resolve) => m.once('report', () => resolve()))
    await m.stop()
    expect(reports.length).toBeGreaterThanOrEqual(1)
    expect(reports[0]!.partitions!.created.map((p) => p.name)[0]).toBe('job_history_p20320101')
    expect(m.isRunning).toBe(false)
    await m.close()

    const broken = Maintenance.create(t.adminUrl, { schema: 'pgq_no_such_schema', tasks: { vacuum: false, partitions: false, retention: false } })
    await expect(broken.start()).rejects.toThrow(/Maintenance: pgqueue is not installed in schema "pgq_no_such_schema"/)
    expect(broken.isRunning).toBe(false)
    await broken.close()
    // A task failing in a running loop is an error event, and the loop goes on.
    const failing = Maintenance.create(t.adminUrl, { ...t.schemaOptions, clock, housekeepingEveryMs: 100, tasks: { vacuum: false, partitions: false, retention: false, rollup: false, liveCounts: false } })
    const errors: Error[] = []
    failing.on('error', (e) => errors.push(e))
    await failing.start()
    await t.admin.query(`alter table "${t.schema}".nodes rename to nodes_away`)
    try {
      clock.add(1_000)
      failing.wake()
      while (errors.length === 0) await new Promise((r) => setTimeout(r, 20))
    } finally {
      await t.admin.query(`alter table "${t.schema}".nodes_away rename to nodes`)
    }
    expect(failing.isRunning).toBe(true)
    await failing.close()
    expect(errors[0]).toBeInstanceOf(PgQueueMaintenanceError)
    await expect(Maintenance.runOnce(t.adminUrl, { schema: 'pgq_no_such_schema', tasks: { vacuum: false } })).rejects.toBeInstanceOf(PgQueueMaintenanceError)
  })

  it('rejects invalid options at construction, naming the field', () => {
    const bad: [object, string][] = [
      [{ partitionGranularity: 'hour' }, 'partitionGranularity'],
      [{ partitionsAhead: -1 }, 'partitionsAhead'],
      [{ retentionMs: 10 }, 'retentionMs'],
      [{ retentionMode: 'delete' }, 'retentionMode'],
      [{ vacuumDeadRatio: 2 }, 'vacuumDeadRatio'],
      [{ tasks: { cleanup: true } }, 'tasks.cleanup'],
      [{ tasks: { rollup: 'yes' } }, 'tasks.rollup'],
      [{ rollupChunkMs: 60_000 }, 'rollupChunkMs'],
      [{ rollupSafetyLagMs: -1 }, 'rollupSafetyLagMs'],
      [{ rollupMinutesRetentionMs: 1_000 }, 'rollupMinutesRetentionMs'],
      [{ liveCountsEveryMs: 0 }, 'liveCountsEveryMs'],
      [{ schema: 'Bad-Name' }, 'schema'],
    ]
    for (const [options, field] of bad) {
      let err: unknown
      try {
        Maintenance.create(t.adminUrl, options as never)
      } catch (e) {
        err = e
      }
      expect(err, field).toBeInstanceOf(PgQueueValidationError)
      expect((err as PgQueueValidationError).field).toBe(field)
    }
  })
})
