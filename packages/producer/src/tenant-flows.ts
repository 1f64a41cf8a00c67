import { isUuid, PgQueueValidationError, withTenantTransaction, type Database } from '@pgqueue/core/internal'
import type { Kysely } from 'kysely'
import type { ProducerContext } from './context.js'
import { mapTenantErrors } from './db-errors.js'
import { flowCancel, flowNodeList } from './queries/flows.js'
import type { FlowInfo, FlowNodeInfo, FlowNodeState } from './types.js'

/** Reading and cancelling one tenant's flows (created with TenantQueues.flow()). */
export class TenantFlows {
  /** @internal */
  constructor(
    private readonly ctx: ProducerContext,
    readonly tenantId: string,
  ) {}

  /**
   * A flow's nodes with their states (a live job's state, 'waiting' while parents are unfinished, or
   * the outcome once finished) and its edges; null when this tenant has no such flow.
   */
  async get(flowId: string): Promise<FlowInfo | null> {
    this.ctx.assertOpen()
    const id = checkFlowId(flowId)
    const rows = await this.inTenant((trx) => flowNodeList(trx, { schema: this.ctx.schema, tenantId: this.tenantId, flowId: id }))
    if (rows.length === 0) return null
    const counts: Partial<Record<FlowNodeState, number>> = {}
    const edges: { parent: string; child: string }[] = []
    const nodes = rows.map((r): FlowNodeInfo => {
      const state: FlowNodeState = r.state === 'completed' || r.state === 'failed' || r.state === 'cancelled' ? r.state : (r.job_state ?? 'cancelled')
      counts[state] = (counts[state] ?? 0) + 1
      for (const p of r.parents) edges.push({ parent: p, child: r.id })
      return {
        id: r.id, ref: r.ref, queue: r.queue, type: r.type, state, parents: r.parents, runOnParentFailure: r.run_on_parent_failure,
        parentsLeft: r.parents_left, error: r.error, createdAt: r.created_at, finishedAt: r.finished_at,
      }
    })
    const finished = nodes.every((n) => n.state === 'completed' || n.state === 'failed' || n.state === 'cancelled')
    return { flowId: id, nodes, edges, counts, finished }
  }

  /**
   * Cancels a flow: every job of it that is waiting, scheduled, pending or held moves to history as
   * cancelled (error code FLOW_CANCELLED), and every running one is flagged as cancel() does.
   */
  async cancel(flowId: string): Promise<{ cancelled: number; cancelRequested: number }> {
    this.ctx.assertOpen()
    const id = checkFlowId(flowId)
    const r = await this.inTenant((trx) => flowCancel(trx, { schema: this.ctx.schema, tenantId: this.tenantId, flowId: id }))
    return { cancelled: r.cancelled, cancelRequested: r.flagged }
  }

  private inTenant<T>(fn: (trx: Kysely<Database>) => Promise<T>): Promise<T> {
    return mapTenantErrors(this.tenantId, () => withTenantTransaction(this.ctx.db, this.ctx.options.tenantKey, this.tenantId, fn))
  }
}

function checkFlowId(flowId: unknown): string {
  if (!isUuid(flowId)) throw new PgQueueValidationError('flowId', 'must be a UUID', flowId)
  return flowId.toLowerCase()
}
