import { PgQueueValidationError, planFlow, uuidv7, type FlowPushRow } from '@pgqueue/core/internal'
import { validatePushItem } from './push-input.js'
import type { FlowNode } from './types.js'

/** A flow call checked and in the database's shape: rows in dependency order, edges by job id. */
export interface FlowInput {
  rows: FlowPushRow[]
  edges: { child: string; parent: string }[]
  /** Job id per ref. */
  ids: Map<string, string>
}

/**
 * Checks the nodes of a flow call (each a push item plus ref, dependsOn and runOnParentFailure; see
 * planFlow() for the graph checks) and returns what push_flow() takes. Nothing is written before every
 * node passed. A node may not have a key: a push by key could replace a waiting job and take it out of
 * its flow. With `allowIds` (ctx.flow.add()), a dependsOn entry may be the id of a job already in the flow.
 * @internal Used by the producer and the Worker; not a stable API.
 */
export function validateFlowNodes(nodes: readonly FlowNode[], field: string, payloadLimit: number, now: () => Date, allowIds = false): FlowInput {
  const plan = planFlow(nodes as never, field, { allowIds })
  const ids = new Map<string, string>()
  const pushRows = new Map<number, ReturnType<typeof validatePushItem>>()
  for (const p of plan) {
    const f = `${field}[${p.index}]`
    const { ref: _ref, dependsOn: _deps, runOnParentFailure: _ropf, ...item } = nodes[p.index]!
    if (item.key !== undefined && item.key !== null) throw new PgQueueValidationError(`${f}.key`, 'flow nodes take no key', item.key)
    const row = validatePushItem(item, f, payloadLimit, now)
    pushRows.set(p.index, row)
    ids.set(p.ref, row.id)
  }
  const rows: FlowPushRow[] = []
  const edges: { child: string; parent: string }[] = []
  for (const p of plan) {
    const r = pushRows.get(p.index)!
    rows.push({
      id: r.id, ref: p.ref, queue: r.queue, type: r.type, payload: r.payload, payloadType: r.payloadType, target: r.target,
      priority: r.priority, runAt: r.runAt, maxAttempts: r.maxAttempts, retryPolicy: r.retryPolicy, runOnParentFailure: p.runOnParentFailure,
    })
    for (const parent of p.parents) edges.push({ child: r.id, parent: pushRows.get(parent)!.id })
    for (const parent of p.existingParents) edges.push({ child: r.id, parent })
  }
  return { rows, edges, ids }
}

/** A fresh flow id (UUIDv7). @internal */
export function newFlowId(): string {
  return uuidv7()
}
