import { ROOT_CONTEXT, trace, type Span } from '@opentelemetry/api'
import { LIMITS, decodeBody, flowAdopt, flowParents, flowPush, tracedPush, uuidv7, type Queryable, type Telemetry } from '@pgqueue/core/internal'
import { validateFlowNodes } from '@pgqueue/producer'
import type { FlowAddNode, FlowParent, Job } from './job.js'
import type { RunFlows } from './job-executor.js'

/**
 * The flow calls of a handler's ctx, on the Worker's pool (worker role): parents() reads the parents'
 * outcomes from flow_nodes in one query; add() validates nodes like the producer's flow() and pushes
 * them through the worker role's push_flow(), which lets them depend on jobs already in the flow.
 * With telemetry, add() is a send span, a child of the run's process span (given, not taken from the
 * active context, which needs a context manager), whose context the added jobs store: their runs
 * continue the trace of the run that added them.
 */
export function runFlows(pool: () => Queryable, schema: string, telemetry: () => Telemetry | undefined): RunFlows {
  return {
    async parents(job: Job): Promise<FlowParent[]> {
      if (job.flowId === null) return []
      const rows = await flowParents(pool(), { schema, tenantId: job.tenantId, id: job.id })
      return rows.map((r) => ({
        id: r.id, ref: r.ref, queue: r.queue, type: r.type, state: r.state, result: r.result, resultType: r.result_type,
        data: decodeBody(r.result, r.result_type), error: r.error, finishedAt: r.finished_at,
      }))
    },
    async add(job: Job, nodes: readonly FlowAddNode[], span: Span | undefined) {
      const input = validateFlowNodes(nodes as never, 'nodes', LIMITS.payloadBytes, () => new Date(), true)
      if (job.flowId === null) job.flowId = await flowAdopt(pool(), { schema, tenantId: job.tenantId, id: job.id, flowId: uuidv7() })
      const flowId = job.flowId
      const parent = span === undefined ? undefined : trace.setSpan(ROOT_CONTEXT, span)
      await tracedPush(telemetry(), job.tenantId, input.rows, (traceContext) =>
        flowPush(pool(), { schema, tenantId: job.tenantId, flowId, rows: input.rows, edges: input.edges, traceContext }), undefined, parent)
      return { flowId: job.flowId, jobs: Object.fromEntries(input.ids) }
    },
  }
}
