import { sql, type Kysely } from 'kysely'
import type { Database, FlowNodeState, JobState } from '@pgqueue/core/internal'

/** One node of a flow as the job page draws it. */
export interface FlowGraphNode {
  id: string
  ref: string
  queue: string
  type: string
  /** The node's state: waiting, live (then jobState says which), or its outcome. */
  state: FlowNodeState
  /** The live job's state, for a live node; null once it has left the jobs table. */
  jobState: JobState | null
}

/** The part of a flow the job page shows: at most `cap` nodes, the edges between them, and the flow's size. */
export interface FlowGraph {
  nodes: FlowGraphNode[]
  edges: { parent: string; child: string }[]
  /** Nodes in the flow, shown or not. */
  total: number
}

/**
 * The flow around one job, read in three index-backed statements whatever the size of the jobs table:
 * - the job's parents and children: flow_edges_child_idx (tenant_id, child_id) and the primary key
 *   (tenant_id, parent_id, child_id), at most `cap / 3` of each;
 * - the rest of the flow up to `cap` nodes, oldest first, and the flow's node count: flow_nodes_flow_idx
 *   (tenant_id, flow_id) (this reads the flow's index entries once: it grows with the flow, not the table);
 * - each shown node's row and live state: primary keys of flow_nodes and jobs, one probe per node;
 * - the edges between shown nodes: the primary key of flow_edges, one range per shown parent.
 * The tenant is always the job's own; in tenant mode RLS scopes every table to it anyway.
 */
export async function flowGraph(
  db: Kysely<Database>,
  p: { schema: string; tenantId: string; flowId: string; jobId: string; cap: number },
): Promise<FlowGraph> {
  const n = sql.id(p.schema, 'flow_nodes')
  const e = sql.id(p.schema, 'flow_edges')
  const j = sql.id(p.schema, 'jobs')
  const side = Math.max(1, Math.floor(p.cap / 3))
  const { rows } = await sql<{ id: string; ref: string; queue: string; type: string; state: FlowNodeState; job_state: JobState | null; total: number }>`
    with near as (
      select ${p.jobId}::uuid as id, 0 as rank
      union all
      (select parent_id, 1 from ${e} where tenant_id = ${p.tenantId} and child_id = ${p.jobId}::uuid order by parent_id limit ${side})
      union all
      (select child_id, 2 from ${e} where tenant_id = ${p.tenantId} and parent_id = ${p.jobId}::uuid order by child_id limit ${side})
    ), picked as (
      select id from near
      union
      (select id from ${n} where tenant_id = ${p.tenantId} and flow_id = ${p.flowId}::uuid order by id limit ${p.cap})
    ), ids as (
      -- The neighbours first, then the oldest nodes, up to the cap.
      select p.id from picked p left join near on near.id = p.id
       order by coalesce(near.rank, 3), p.id limit ${p.cap}
    )
    select x.id, x.ref, x.queue, x.type, x.state,
           (select js.state from ${j} js where js.tenant_id = x.tenant_id and js.id = x.id) as job_state,
           (select count(*)::int from ${n} c where c.tenant_id = ${p.tenantId} and c.flow_id = ${p.flowId}::uuid) as total
      from ids cross join lateral (
        select * from ${n} where tenant_id = ${p.tenantId} and id = ids.id and flow_id = ${p.flowId}::uuid limit 1
      ) x
     order by x.id`.execute(db)
  if (rows.length === 0) return { nodes: [], edges: [], total: 0 }
  const ids = rows.map((r) => r.id)
  const edges = await sql<{ parent: string; child: string }>`
    select parent_id as parent, child_id as child from ${e}
     where tenant_id = ${p.tenantId} and parent_id = any(${ids}::uuid[]) and child_id = any(${ids}::uuid[])
     order by parent_id, child_id`.execute(db)
  return {
    nodes: rows.map((r) => ({ id: r.id, ref: r.ref, queue: r.queue, type: r.type, state: r.state, jobState: r.job_state })),
    edges: edges.rows,
    total: rows[0]!.total,
  }
}
