import type { Kysely, Selectable } from 'kysely'
import type { Database, FlowNodesTable, JobState } from '@pgqueue/core/internal'
import { sql } from 'kysely'

/** A flow node with its live job's state (null once finished) and its parents. */
export type FlowNodeRow = Omit<Selectable<FlowNodesTable>, 'tenant_id' | 'flow_id' | 'result' | 'result_type'> & {
  job_state: JobState | null
  parents: string[]
}

/**
 * The nodes of one flow of the tenant, oldest first, each with its live job's state and its parents'
 * ids: flow_nodes by (tenant_id, flow_id); the live row (primary key) and the edges (child index) by
 * correlated subqueries, one probe per node.
 */
export async function flowNodeList(db: Kysely<Database>, p: { schema: string; tenantId: string; flowId: string }): Promise<FlowNodeRow[]> {
  const { rows } = await sql<FlowNodeRow>`
    select n.id, n.ref, n.queue, n.type, n.parents_left, n.run_on_parent_failure, n.state, n.error, n.created_at, n.finished_at,
           (select j.state from ${sql.id(p.schema, 'jobs')} j where j.tenant_id = n.tenant_id and j.id = n.id) as job_state,
           coalesce((select array_agg(e.parent_id order by e.parent_id) from ${sql.id(p.schema, 'flow_edges')} e
                      where e.tenant_id = n.tenant_id and e.child_id = n.id), '{}') as parents
      from ${sql.id(p.schema, 'flow_nodes')} n
     where n.tenant_id = ${p.tenantId} and n.flow_id = ${p.flowId}
     order by n.id`.execute(db)
  return rows
}

/** Cancels a flow through flow_cancel(): its waiting and queued jobs to history, running ones flagged. */
export async function flowCancel(db: Kysely<Database>, p: { schema: string; tenantId: string; flowId: string }): Promise<{ cancelled: number; flagged: number }> {
  const { rows } = await sql<{ cancelled: number; flagged: number }>`
    select cancelled, flagged from ${sql.id(p.schema, 'flow_cancel')}(${p.tenantId}, ${p.flowId}::uuid)`.execute(db)
  return rows[0] ?? { cancelled: 0, flagged: 0 }
}
