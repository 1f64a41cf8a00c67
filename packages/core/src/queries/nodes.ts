import { quoteIdent } from '../options.js'
import type { Queryable } from '../queryable.js'

/** What a heartbeat learned about the other nodes. */
export interface NodeBeat {
  /** Another process (another `instance`) beat under the same node id within `recentMs`. */
  sharedWith: { pid: unknown; agoMs: number } | null
  /** Milliseconds since any Scheduler last beat, or null when none ever did (database clock). */
  schedulerAgoMs: number | null
}

/**
 * Registers a component instance in the nodes table, or refreshes its heartbeat, in one statement that
 * also reads what the row held before (in the statement's snapshot) and when a Scheduler last beat, so a
 * Worker can warn about a shared node id or a missing Scheduler at no extra round trip. `info.instance`
 * tells this process from another using the same node id.
 */
export async function nodeHeartbeat(
  db: Queryable,
  p: { schema: string; nodeId: string; kind: string; info: { instance?: string } & Record<string, unknown>; recentMs?: number },
): Promise<NodeBeat> {
  const s = quoteIdent(p.schema)
  const { rows } = await db.query<{ prev_instance: string | null; prev_pid: unknown; prev_ago_ms: number | null; scheduler_ago_ms: number | null }>(
    `with prev as (select info->>'instance' as instance, info->'pid' as pid, heartbeat_at from ${s}.nodes where node_id = $1),
          beat as (insert into ${s}.nodes (node_id, kind, info) values ($1, $2, $3)
                   on conflict (node_id) do update set heartbeat_at = now(), kind = excluded.kind, info = excluded.info
                   returning 1)
     select (select instance from prev) as prev_instance, (select pid from prev) as prev_pid,
            (select extract(epoch from now() - heartbeat_at) * 1000 from prev)::float8 as prev_ago_ms,
            (select extract(epoch from now() - max(heartbeat_at)) * 1000 from ${s}.nodes where kind = 'scheduler')::float8 as scheduler_ago_ms
       from beat`,
    [p.nodeId, p.kind, JSON.stringify(p.info)],
  )
  const r = rows[0]
  const shared = r !== undefined && p.info.instance !== undefined && r.prev_instance !== null && r.prev_instance !== p.info.instance &&
    r.prev_ago_ms !== null && r.prev_ago_ms < (p.recentMs ?? 30_000)
  return {
    sharedWith: shared ? { pid: r!.prev_pid, agoMs: Math.round(r!.prev_ago_ms!) } : null,
    schedulerAgoMs: r?.scheduler_ago_ms === null || r === undefined ? null : Math.round(r.scheduler_ago_ms),
  }
}

/** Removes the node's row on a clean stop. */
export async function nodeDelete(db: Queryable, p: { schema: string; nodeId: string }): Promise<void> {
  await db.query(`delete from ${quoteIdent(p.schema)}.nodes where node_id = $1`, [p.nodeId])
}
