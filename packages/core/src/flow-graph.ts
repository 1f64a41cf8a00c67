import { PgQueueValidationError } from './errors.js'
import { isUuid } from './ids.js'
import { validateName } from './validate.js'

/** Most nodes one flow call creates (flow(), ctx.flow.add()); a flow grows past it by adding at run time. */
export const MAX_FLOW_NODES = 1_000
/** Most dependencies (edges) one flow call creates. */
export const MAX_FLOW_EDGES = 100_000
/** Longest ref, in UTF-8 bytes. */
export const FLOW_REF_BYTES = 128

/** The flow fields of one node, as given. */
export interface FlowNodeLinks {
  ref?: unknown
  dependsOn?: unknown
  runOnParentFailure?: unknown
}

/** A node's checked links, in the order the database takes them (parents before children). */
export interface FlowPlanNode {
  /** Position in the caller's array. */
  index: number
  ref: string
  runOnParentFailure: boolean
  /** Indexes (caller's) of parents in this call. */
  parents: number[]
  /** Ids of existing jobs of the flow (only where allowed). */
  existingParents: string[]
}

/**
 * Checks the refs and dependencies of a flow call and orders its nodes so every parent comes before
 * its children (the database checks that order instead of searching for cycles). Refused with a
 * PgQueueValidationError naming the field: no nodes or more than MAX_FLOW_NODES, a missing or
 * duplicate ref, a dependency on a ref that is not in the call, a cycle. With `existing`, a
 * dependency may also name the id of a job already in the flow (ctx.flow.add(); the database
 * checks that it is one).
 */
export function planFlow(nodes: readonly FlowNodeLinks[], field: string, existing?: { allowIds: boolean }): FlowPlanNode[] {
  if (!Array.isArray(nodes)) throw new PgQueueValidationError(field, 'must be an array of nodes', nodes)
  if (nodes.length === 0) throw new PgQueueValidationError(field, 'must hold at least one node', nodes.length)
  if (nodes.length > MAX_FLOW_NODES) throw new PgQueueValidationError(field, `must hold at most ${MAX_FLOW_NODES} nodes per call`, nodes.length)
  const byRef = new Map<string, number>()
  nodes.forEach((n, i) => {
    if (typeof n !== 'object' || n === null) throw new PgQueueValidationError(`${field}[${i}]`, 'must be an object', n)
    const ref = validateName(`${field}[${i}].ref`, n.ref, FLOW_REF_BYTES)
    if (byRef.has(ref)) throw new PgQueueValidationError(`${field}[${i}].ref`, `duplicate ref '${ref}'`, ref)
    byRef.set(ref, i)
  })
  let edges = 0
  const plan: FlowPlanNode[] = nodes.map((n, i) => {
    const deps = n.dependsOn ?? []
    if (!Array.isArray(deps)) throw new PgQueueValidationError(`${field}[${i}].dependsOn`, 'must be an array of refs', deps)
    const parents = new Set<number>()
    const existingParents = new Set<string>()
    deps.forEach((d, k) => {
      const f = `${field}[${i}].dependsOn[${k}]`
      if (typeof d !== 'string') throw new PgQueueValidationError(f, 'must be a ref (a string)', d)
      const p = byRef.get(d)
      if (p !== undefined) {
        if (p === i) throw new PgQueueValidationError(f, 'a node cannot depend on itself', d)
        parents.add(p)
      } else if (existing?.allowIds && isUuid(d)) existingParents.add(d.toLowerCase())
      else throw new PgQueueValidationError(f, existing?.allowIds ? `unknown ref '${d}' (not a node of this call, nor a job id)` : `unknown ref '${d}'`, d)
    })
    edges += parents.size + existingParents.size
    if (edges > MAX_FLOW_EDGES) throw new PgQueueValidationError(`${field}[${i}].dependsOn`, `a flow call takes at most ${MAX_FLOW_EDGES} dependencies`, edges)
    const ropf = n.runOnParentFailure
    if (ropf !== undefined && typeof ropf !== 'boolean') throw new PgQueueValidationError(`${field}[${i}].runOnParentFailure`, 'must be a boolean', ropf)
    return { index: i, ref: n.ref as string, runOnParentFailure: ropf === true, parents: [...parents], existingParents: [...existingParents] }
  })
  return topologicalOrder(plan, field)
}

/** Kahn's algorithm, stable in the input order; a node left over sits on a cycle. */
function topologicalOrder(plan: FlowPlanNode[], field: string): FlowPlanNode[] {
  const indegree = plan.map((n) => n.parents.length)
  const children: number[][] = plan.map(() => [])
  for (const n of plan) for (const p of n.parents) children[p]!.push(n.index)
  const out: FlowPlanNode[] = []
  const ready: number[] = []
  for (let i = 0; i < plan.length; i++) if (indegree[i] === 0) ready.push(i)
  for (let head = 0; head < ready.length; head++) {
    const i = ready[head]!
    out.push(plan[i]!)
    for (const c of children[i]!) if (--indegree[c]! === 0) ready.push(c)
  }
  if (out.length < plan.length) {
    const stuck = plan.find((n) => indegree[n.index]! > 0)!
    throw new PgQueueValidationError(`${field}[${stuck.index}].dependsOn`, `the dependencies form a cycle through '${stuck.ref}'`, stuck.ref)
  }
  return out
}
