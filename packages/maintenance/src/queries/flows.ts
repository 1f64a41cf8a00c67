import { sql, type Kysely } from 'kysely'
import { quoteIdent, type Database } from '@pgqueue/core/internal'

/**
 * Deletes the nodes and edges of up to `limit` finished flows (every node completed, failed or
 * cancelled) whose last node finished before `before`: the flow tables' retention, matching history's.
 * Groups all of flow_nodes to find them (one pass per call, so once per retention run and batch).
 * Returns the flows removed.
 */
export async function flowFinishedDelete(trx: Kysely<Database>, p: { schema: string; before: Date; limit: number }): Promise<number> {
  const s = quoteIdent(p.schema)
  const { rows } = await sql<{ n: number }>`
    with old as materialized (
      select n.tenant_id, n.flow_id
        from ${sql.raw(`${s}.flow_nodes`)} n
       group by n.tenant_id, n.flow_id
      having bool_and(n.state in ('completed', 'failed', 'cancelled')) and max(n.finished_at) < ${p.before}
       limit ${p.limit}
    ),
    edges as (
      delete from ${sql.raw(`${s}.flow_edges`)} e
       using ${sql.raw(`${s}.flow_nodes`)} n, old o
       where n.tenant_id = o.tenant_id and n.flow_id = o.flow_id and e.tenant_id = n.tenant_id and e.child_id = n.id
    ),
    nodes as (
      delete from ${sql.raw(`${s}.flow_nodes`)} n using old o
       where n.tenant_id = o.tenant_id and n.flow_id = o.flow_id
    )
    select count(*)::int as n from old`.execute(trx)
  return rows[0]?.n ?? 0
}
