import type pg from 'pg'
import type { Clock } from '@pgqueue/core/internal'
import type { IsolatedDatabase } from '@pgqueue/testing'

/** A clock tests move by hand. */
export class ManualClock implements Clock {
  constructor(private at: Date) {}
  now(): Date {
    return new Date(this.at)
  }
  set(at: Date | string): void {
    this.at = new Date(at)
  }
  advance(ms: number): void {
    this.at = new Date(this.at.getTime() + ms)
  }
}

/** A schedule row as the producer would write it (column meanings of migration 0001). */
export interface ScheduleRow {
  tenant: string
  key: string
  queue?: string
  type?: string
  cron?: string | null
  timezone?: string | null
  everyMs?: number | null
  anchorAt?: Date | null
  missedPolicy?: 'fire_once' | 'skip'
  payload?: Buffer | null
  payloadType?: string | null
  target?: unknown
  priority?: number
  retryPolicy?: unknown
  paused?: boolean
  nextRunAt: Date | null
}

/** Inserts schedules as the admin, in one statement; returns their ids in input order. */
export async function insertSchedules(t: IsolatedDatabase, rows: ScheduleRow[]): Promise<string[]> {
  const col = <T>(f: (r: ScheduleRow) => T) => rows.map(f)
  const { rows: out } = await t.admin.query<{ id: string }>(
    `insert into "${t.schema}".schedules (tenant_id, key, queue, type, cron, timezone, every_ms, anchor_at, missed_policy,
        payload, payload_type, target, priority, retry_policy, paused, next_run_at)
     select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::timestamptz[],
        $9::text[], $10::bytea[], $11::text[], $12::jsonb[], $13::int[], $14::jsonb[], $15::bool[], $16::timestamptz[])
     returning id`,
    [
      col((r) => r.tenant),
      col((r) => r.key),
      col((r) => r.queue ?? 'q'),
      col((r) => r.type ?? 'tick'),
      col((r) => r.cron ?? null),
      col((r) => (r.cron ? (r.timezone ?? 'UTC') : null)),
      col((r) => r.everyMs ?? null),
      col((r) => r.anchorAt?.toISOString() ?? null),
      col((r) => r.missedPolicy ?? 'fire_once'),
      col((r) => r.payload ?? null),
      col((r) => r.payloadType ?? null),
      col((r) => (r.target === undefined ? null : JSON.stringify(r.target))),
      col((r) => r.priority ?? 0),
      col((r) => (r.retryPolicy === undefined || r.retryPolicy === null ? null : JSON.stringify(r.retryPolicy))),
      col((r) => r.paused ?? false),
      col((r) => r.nextRunAt?.toISOString() ?? null),
    ],
  )
  return out.map((r) => r.id)
}

/** Jobs per schedule id. */
export async function jobCounts(admin: pg.Pool, schema: string): Promise<Map<string, number>> {
  const { rows } = await admin.query<{ schedule_id: string; n: number }>(
    `select schedule_id, count(*)::int as n from "${schema}".jobs where schedule_id is not null group by schedule_id`,
  )
  return new Map(rows.map((r) => [r.schedule_id, r.n]))
}

/** Number of jobs in the schema. */
export async function jobTotal(admin: pg.Pool, schema: string): Promise<number> {
  const { rows } = await admin.query<{ n: number }>(`select count(*)::int as n from "${schema}".jobs`)
  return rows[0]!.n
}

/** Schedules still due at `now` (unpaused, next_run_at <= now). */
export async function dueCount(admin: pg.Pool, schema: string, now: Date): Promise<number> {
  const { rows } = await admin.query<{ n: number }>(
    `select count(*)::int as n from "${schema}".schedules where not paused and next_run_at <= $1`,
    [now.toISOString()],
  )
  return rows[0]!.n
}
