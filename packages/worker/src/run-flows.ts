import { LIMITS, decodeBody, flowAdopt, flowParents, flowPush, uuidv7, type Queryable } from '@pgqueue/core/internal'
import { validateFlowNodes } from '@pgqueue/producer'
import type { FlowAddNode, FlowParent, Job } from './job.js'
import type { RunFlows } from './job-executor.js'

/**
 * The flow calls of a handler's ctx, on the Worker's pool (worker role): parents() reads the parents'
 * outcomes from flow_nodes in one query; add() validates nodes like the producer's flow() and pushes
 * them through the worker role's push_flow(), which lets them depend on jobs already in the flow.
 */
export function runFlows(pool: () => Queryable, schema: string): RunFlows {
  return {
    async parents(job: Job): Promise<FlowParent[]> {
      if (job.flowId === null) return []
      const rows = await flowParents(pool(), { schema, tenantId: job.tenantId, id: job.id })
      return rows.map((r) => ({
        id: r.id, ref: r.ref, queue: r.queue, type: r.type, state: r.state, result: r.result, resultType: r.result_type,
        data: decodeBody(r.result, r.result_type), error: r.error, finishedAt: r.finished_at,
      }))
    },
    async add(job: Job, nodes: readonly FlowAddNode[]) {
      const input = validateFlowNodes(nodes as never, 'nodes', LIMITS.payloadBytes, () => new Date(), true)
      if (job.flowId === null) job.flowId = await flowAdopt(pool(), { schema, tenantId: job.tenantId, id: job.id, flowId: uuidv7() })
      await flowPush(pool(), { schema, tenantId: job.tenantId, flowId: job.flowId, rows: input.rows, edges: input.edges })
      return { flowId: job.flowId, jobs: Object.fromEntries(input.ids) }
    },
  }
}
