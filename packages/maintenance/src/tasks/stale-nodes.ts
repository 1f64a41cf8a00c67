import { lockTryTask } from '../queries/locks.js'
import { nodesStaleDelete } from '../queries/nodes.js'
import type { SkipReason, TaskContext } from './context.js'

/** What the stale-nodes task did. */
export interface NodesResult {
  skipped?: SkipReason
  /** node_id of each record deleted. */
  deleted: string[]
}

/** Deletes node records whose heartbeat is older than staleNodeAfterMs (crashed or long-gone instances). */
export async function runStaleNodesTask(ctx: TaskContext): Promise<NodesResult> {
  return ctx.db.transaction().execute(async (trx) => {
    if (!(await lockTryTask(trx, { schema: ctx.options.schema, task: 'nodes' }))) return { skipped: 'locked' as const, deleted: [] }
    const deleted = await nodesStaleDelete(trx, { schema: ctx.options.schema, staleAfterMs: ctx.options.staleNodeAfterMs })
    if (deleted.length > 0) ctx.logger.info({ component: 'maintenance', nodes: deleted }, `maintenance: deleted ${deleted.length} stale node records`)
    return { deleted }
  })
}
