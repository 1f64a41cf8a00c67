import { sql, type Kysely, type Selectable } from 'kysely'
import type { Database, SchedulesTable } from '@pgqueue/core/internal'

/** A schedules row, as core's Database types describe it. */
export type ScheduleRow = Selectable<SchedulesTable>

/** A validated schedule, ready to store. */
export interface ScheduleValues {
  id: string
  key: string
  queue: string
  type: string
  cron: string | null
  timezone: string | null
  every_ms: number | null
  anchor_at: Date | null
  missed_policy: 'fire_once' | 'skip'
  payload: Buffer | null
  payload_type: string | null
  target: string | null
  priority: number
  retry_policy: string | null
  /** undefined: keep an existing schedule's flag (false for a new one). */
  paused: boolean | undefined
  next_run_at: Date
  /** True when the caller gave startAt: the timing is then reset even if the spec did not change. */
  resetTiming: boolean
}

/**
 * Creates or replaces a schedule by (tenant, key). The template always takes the new values; the
 * timing (anchor_at, next_run_at) is kept when the spec (cron, timezone, every_ms) did not change and
 * no startAt was given, so a service that declares its schedules at every boot neither shifts an
 * interval's grid nor postpones a due run. last_run_at is always kept (the ScheduleRunner's record).
 */
export async function scheduleUpsert(db: Kysely<Database>, params: { schema: string; tenantId: string; values: ScheduleValues }): Promise<ScheduleRow> {
  const v = params.values
  const sameTiming = v.resetTiming
    ? sql<boolean>`false`
    : sql<boolean>`(s.cron is not distinct from excluded.cron and s.timezone is not distinct from excluded.timezone
                    and s.every_ms is not distinct from excluded.every_ms)`
  const { rows } = await sql<ScheduleRow>`
    insert into ${sql.id(params.schema, 'schedules')} as s
      (tenant_id, id, key, queue, type, cron, timezone, every_ms, anchor_at, missed_policy, payload, payload_type,
       target, priority, retry_policy, paused, next_run_at)
    values (${params.tenantId}, ${v.id}, ${v.key}, ${v.queue}, ${v.type}, ${v.cron}, ${v.timezone}, ${v.every_ms},
            ${v.anchor_at}, ${v.missed_policy}, ${v.payload}, ${v.payload_type}, ${v.target}::jsonb, ${v.priority},
            ${v.retry_policy}::jsonb, ${v.paused ?? false}, ${v.next_run_at})
    on conflict (tenant_id, key) do update set
      queue = excluded.queue, type = excluded.type, cron = excluded.cron, timezone = excluded.timezone,
      every_ms = excluded.every_ms, missed_policy = excluded.missed_policy, payload = excluded.payload,
      payload_type = excluded.payload_type, target = excluded.target, priority = excluded.priority,
      retry_policy = excluded.retry_policy,
      paused = ${v.paused === undefined ? sql`s.paused` : sql`excluded.paused`},
      anchor_at = case when ${sameTiming} then s.anchor_at else excluded.anchor_at end,
      next_run_at = case when ${sameTiming} then s.next_run_at else excluded.next_run_at end,
      updated_at = now()
    returning s.*`.execute(db)
  return rows[0]!
}

/** A schedule by key, or undefined. */
export async function scheduleGetByKey(db: Kysely<Database>, params: { schema: string; tenantId: string; key: string }): Promise<ScheduleRow | undefined> {
  return (await db.withSchema(params.schema).selectFrom('schedules').selectAll()
    .where('tenant_id', '=', params.tenantId).where('key', '=', params.key).executeTakeFirst()) as ScheduleRow | undefined
}

/** Schedules by key, keyset on the key (the unique index (tenant_id, key) serves it). */
export async function scheduleList(
  db: Kysely<Database>,
  params: { schema: string; tenantId: string; queue?: string; afterKey?: string; limit: number },
): Promise<ScheduleRow[]> {
  let q = db.withSchema(params.schema).selectFrom('schedules').selectAll().where('tenant_id', '=', params.tenantId)
  if (params.queue !== undefined) q = q.where('queue', '=', params.queue)
  if (params.afterKey !== undefined) q = q.where('key', '>', params.afterKey)
  return (await q.orderBy('key').limit(params.limit).execute()) as ScheduleRow[]
}

/**
 * Deletes a schedule by key through schedule_delete() (the user role has no DELETE: it would let a session
 * lock the whole table); true when it existed. Jobs it already fired are left alone.
 */
export async function scheduleDelete(db: Kysely<Database>, params: { schema: string; tenantId: string; key: string }): Promise<boolean> {
  const { rows } = await sql<{ deleted: boolean }>`
    select ${sql.id(params.schema, 'schedule_delete')}(${params.tenantId}, ${params.key}) as deleted`.execute(db)
  return rows[0]?.deleted === true
}

/** Sets the paused flag, and next_run_at when given (resume). Returns the row, or undefined. */
export async function scheduleSetPaused(
  db: Kysely<Database>,
  params: { schema: string; tenantId: string; key: string; paused: boolean; nextRunAt?: Date },
): Promise<ScheduleRow | undefined> {
  return (await db.withSchema(params.schema).updateTable('schedules')
    .set({ paused: params.paused, updated_at: sql<Date>`now()`, ...(params.nextRunAt === undefined ? {} : { next_run_at: params.nextRunAt }) })
    .where('tenant_id', '=', params.tenantId).where('key', '=', params.key)
    .returningAll().executeTakeFirst()) as ScheduleRow | undefined
}

/** Locks a schedule row for the rest of the transaction (resume computes from its anchor, then writes). */
export async function scheduleGetForUpdate(db: Kysely<Database>, params: { schema: string; tenantId: string; key: string }): Promise<ScheduleRow | undefined> {
  return (await db.withSchema(params.schema).selectFrom('schedules').selectAll()
    .where('tenant_id', '=', params.tenantId).where('key', '=', params.key).forUpdate().executeTakeFirst()) as ScheduleRow | undefined
}
