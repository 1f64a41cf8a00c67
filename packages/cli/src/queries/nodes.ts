import type pg from 'pg'
import { quoteIdent } from '@pgqueue/core/internal'

/** Component instances by kind, and how many beat within `aliveMs`. */
export interface NodesByKind {
  kind: string
  alive: number
  stale: number
  /** Milliseconds since the newest heartbeat of this kind. */
  lastBeatAgoMs: number
}

/** Nodes per kind (worker role or owner; the nodes table is not granted to the user role). */
export async function nodesCountByKind(db: Pick<pg.Pool, 'query'>, p: { schema: string; aliveMs: number }): Promise<NodesByKind[]> {
  const { rows } = await db.query<NodesByKind>(
    `select kind,
            count(*) filter (where heartbeat_at > now() - make_interval(secs => $1::float8 / 1000))::int as "alive",
            count(*) filter (where heartbeat_at <= now() - make_interval(secs => $1::float8 / 1000))::int as "stale",
            round(extract(epoch from now() - max(heartbeat_at)) * 1000)::float8 as "lastBeatAgoMs"
       from ${quoteIdent(p.schema)}.nodes group by kind order by kind`,
    [p.aliveMs],
  )
  return rows
}
