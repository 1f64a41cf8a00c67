import type pg from 'pg'
import { quoteIdent } from '../options.js'

/** Anything that runs a query: a pool, a pool client or a client. */
type Queryable = Pick<pg.Pool, 'query'>

/** Registers a component instance in the nodes table, or refreshes its heartbeat. */
export async function nodeHeartbeat(db: Queryable, p: { schema: string; nodeId: string; kind: string; info: unknown }): Promise<void> {
  const s = quoteIdent(p.schema)
  await db.query(
    `insert into ${s}.nodes (node_id, kind, info) values ($1, $2, $3)
     on conflict (node_id) do update set heartbeat_at = now(), kind = excluded.kind, info = excluded.info`,
    [p.nodeId, p.kind, JSON.stringify(p.info)],
  )
}

/** Removes the node's row on a clean stop. */
export async function nodeDelete(db: Queryable, p: { schema: string; nodeId: string }): Promise<void> {
  await db.query(`delete from ${quoteIdent(p.schema)}.nodes where node_id = $1`, [p.nodeId])
}
