import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createIsolatedDatabase, type IsolatedDatabase } from '@pgqueue/testing'
import { migrate, type Database } from '@pgqueue/core/internal'

/**
 * Every column of every table, typed against the Kysely `Database` interface: the compiler rejects a
 * missing or an extra key, and the test below rejects a difference from the migrated schema. Together
 * they keep the TypeScript types and the real schema in step.
 */
const COLUMNS: { [T in keyof Database]: Record<keyof Database[T], true> } = {
  jobs: {
    tenant_id: true, id: true, queue: true, type: true, key: true, state: true, priority: true, vt: true, run_at: true,
    payload: true, payload_type: true, target: true, attempt: true, max_attempts: true, retry_policy: true,
    lease_owner: true, lease_expires_at: true, cancel_requested: true, last_error: true, schedule_id: true,
    retry_of: true, created_at: true, updated_at: true, started_at: true, flow_id: true, trace_context: true, cost: true,
  },
  job_history: {
    tenant_id: true, id: true, queue: true, type: true, key: true, state: true, priority: true, payload: true,
    payload_type: true, target: true, result: true, result_type: true, error: true, attempt: true, max_attempts: true,
    schedule_id: true, retry_of: true, worker_id: true, created_at: true, run_at: true, started_at: true, finished_at: true, flow_id: true,
    trace_context: true,
  },
  queues: {
    tenant_id: true, queue: true, paused: true, max_concurrency: true, retry_policy: true, display_name: true,
    keep_completed: true, created_at: true, updated_at: true,
  },
  queue_clocks: { tenant_id: true, queue: true, last_vt: true, head_vt: true, head_at: true },
  fair_weights: { tenant_id: true, queue: true, weight: true, updated_at: true },
  fair_blocks: { tenant_id: true, queue: true, until: true },
  queue_defaults: { queue: true, retry_policy: true, updated_at: true },
  flow_nodes: {
    tenant_id: true, id: true, flow_id: true, ref: true, queue: true, type: true, parents_left: true,
    run_on_parent_failure: true, state: true, result: true, result_type: true, error: true, created_at: true, finished_at: true,
  },
  flow_edges: { tenant_id: true, parent_id: true, child_id: true },
  rate_limits: { tenant_id: true, queue: true, capacity: true, rate: true, tokens: true, unclaimed: true, refilled_at: true, updated_at: true },
  schedules: {
    tenant_id: true, id: true, key: true, queue: true, type: true, cron: true, timezone: true, every_ms: true,
    anchor_at: true, missed_policy: true, payload: true, payload_type: true, target: true, priority: true,
    retry_policy: true, paused: true, next_run_at: true, last_run_at: true, created_at: true, updated_at: true,
  },
  worker_metadata: { tenant_id: true, key: true, value: true, updated_at: true },
  nodes: { node_id: true, kind: true, started_at: true, heartbeat_at: true, info: true },
  history_rollup_minutes: {
    bucket: true, queue: true, completed: true, failed: true, cancelled: true, last_failure_at: true, wait_hist: true, run_hist: true,
  },
  history_rollup_hours: {
    bucket: true, queue: true, completed: true, failed: true, cancelled: true, last_failure_at: true, wait_hist: true, run_hist: true,
  },
  stats_rollup_state: { id: true, rolled_up_to: true, minutes_from: true, live_counts_at: true, updated_at: true },
  completion_counts: { tenant_id: true, queue: true, finished_at: true, id: true, completed: true, wait_buckets: true, run_buckets: true },
  live_counts: { queue: true, pending: true, scheduled: true, running: true, retrying: true, waiting: true, oldest_pending_run_at: true },
  tenant_secret: { singleton: true, secret: true, inner_key: true, outer_key: true, updated_at: true },
}

let t: IsolatedDatabase
beforeAll(async () => {
  t = await createIsolatedDatabase('dbtypes')
  await migrate(t.adminUrl, t.schemaOptions)
})
afterAll(async () => {
  await t.cleanup()
})

describe('the Kysely Database types', () => {
  it('name exactly the tables and columns the migrations create', async () => {
    const { rows } = await t.admin.query<{ table_name: string; column_name: string }>(
      `select c.table_name, c.column_name from information_schema.columns c
         join pg_class k on k.relname = c.table_name
         join pg_namespace n on n.oid = k.relnamespace and n.nspname = c.table_schema
        where c.table_schema = $1 and k.relkind in ('r', 'p') and not k.relispartition and c.table_name not in ('migrations', 'locks')
        order by 1, 2`,
      [t.schema],
    )
    const actual: Record<string, string[]> = {}
    for (const r of rows) (actual[r.table_name] ??= []).push(r.column_name)
    const expected = Object.fromEntries(Object.entries(COLUMNS).map(([table, cols]) => [table, Object.keys(cols).sort()]))
    expect(actual).toEqual(Object.fromEntries(Object.entries(expected).sort(([a], [b]) => a.localeCompare(b))))
  })
})
