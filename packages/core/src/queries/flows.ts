import { unquotedArrayLiteral } from '../array-literal.js'
import { quoteIdent } from '../options.js'
import type { Queryable } from '../queryable.js'

/**
 * The statement part (a CTE named `flowed`) that settles flows after jobs left the live table in the
 * same statement: flow_parents_done() records the outcomes of the finished rows of `from` that belong
 * to a flow and releases or cancels their waiting children. The function is called only when some row
 * has a flow_id (HAVING), so a batch without flow jobs pays a scan of the CTE's rows in memory and no
 * call. The caller must reference `flowed` (e.g. `where (select count(*) from flowed) >= 0`), since a
 * plain SELECT CTE runs only when read.
 */
export function flowSettleSql(p: { schema: string; from: string; alias: string; state: string; error: string; result?: string; resultType?: string }): string {
  const a = p.alias
  return `flowed as (
       select ${quoteIdent(p.schema)}.flow_parents_done(array_agg(${a}.tenant_id), array_agg(${a}.id), array_agg(${p.state}),
                array_agg(${p.result ?? 'null::bytea'}), array_agg(${p.resultType ?? 'null::text'}), array_agg(${p.error})) as released
         from ${p.from}
        where ${a}.flow_id is not null
       having count(*) > 0
     )`
}

/** One validated flow node, in the shape push_flow() takes. */
export interface FlowPushRow {
  id: string
  ref: string
  queue: string
  type: string
  payload: Buffer | null
  payloadType: string | null
  /** JSON text. */
  target: string | null
  priority: number
  runAt: Date | null
  maxAttempts: number | null
  /** JSON text. */
  retryPolicy: string | null
  runOnParentFailure: boolean
}

/** One created node as push_flow() returns it. */
export interface FlowPushedRow {
  id: string
  ref: string
  state: string
}

/**
 * Creates flow nodes through push_flow(): one statement. With `token` the user role's function (signs
 * the transaction in as the tenant; only nodes of this call may be parents); without, the worker
 * role's (existing nodes of the flow may be parents). `rows` must be in dependency order (parents
 * first) and `edges` name job ids.
 */
export async function flowPush(
  db: Queryable,
  p: {
    schema: string; tenantId: string; token?: string; flowId: string; rows: readonly FlowPushRow[]; edges: readonly { child: string; parent: string }[]
    /** JSON text of the calling span's W3C carrier: set in the same statement, stored with every job (migration 20). */
    traceContext?: string | undefined
  },
): Promise<FlowPushedRow[]> {
  const r = p.rows
  const args: unknown[] = [
    p.tenantId,
    ...(p.token === undefined ? [] : [p.token]),
    p.flowId,
    unquotedArrayLiteral(r.map((x) => x.id)),
    r.map((x) => x.ref),
    r.map((x) => x.queue),
    r.map((x) => x.type),
    r.map((x) => x.payload),
    r.map((x) => x.payloadType),
    r.map((x) => x.target),
    unquotedArrayLiteral(r.map((x) => x.priority)),
    r.map((x) => x.runAt),
    r.map((x) => x.maxAttempts),
    r.map((x) => x.retryPolicy),
    r.map((x) => x.runOnParentFailure),
    unquotedArrayLiteral(p.edges.map((e) => e.child)),
    unquotedArrayLiteral(p.edges.map((e) => e.parent)),
  ]
  const params = args.map((_, i) => `$${i + 1}`)
  if (p.traceContext !== undefined) {
    // As jobPushMany: the tenant argument first sets pgqueue.trace_context; still one statement.
    args.push(p.traceContext)
    params[0] = `(select $1::text from set_config('pgqueue.trace_context', $${args.length}, true))`
  }
  const { rows } = await db.query<FlowPushedRow>(`select id, ref, state from ${quoteIdent(p.schema)}.push_flow(${params.join(', ')})`, args)
  return rows
}

/** A parent of a flow job as flowParents() returns it. */
export interface FlowParentRow {
  id: string
  ref: string
  queue: string
  type: string
  state: 'waiting' | 'live' | 'completed' | 'failed' | 'cancelled'
  result: Buffer | null
  result_type: string | null
  error: unknown
  finished_at: Date | null
}

/**
 * The parents of one flow job with their outcomes and results, in one query: the edges by child
 * (flow_edges_child_idx), each parent's node by primary key (a LATERAL with LIMIT stays one probe per
 * parent, never a scan of the tenant's nodes, whatever the planner guesses).
 */
export async function flowParents(db: Queryable, p: { schema: string; tenantId: string; id: string }): Promise<FlowParentRow[]> {
  const s = quoteIdent(p.schema)
  const { rows } = await db.query<FlowParentRow>(
    `select n.id, n.ref, n.queue, n.type, n.state, n.result, n.result_type, n.error, n.finished_at
       from ${s}.flow_edges e
      cross join lateral (select * from ${s}.flow_nodes n where n.tenant_id = e.tenant_id and n.id = e.parent_id limit 1) n
      where e.tenant_id = $1 and e.child_id = $2
      order by n.id`,
    [p.tenantId, p.id],
  )
  return rows
}

/** Makes a running job that is in no flow the root of a new one (flow_adopt()); returns its flow id. */
export async function flowAdopt(db: Queryable, p: { schema: string; tenantId: string; id: string; flowId: string }): Promise<string> {
  const { rows } = await db.query<{ flow_id: string }>(`select ${quoteIdent(p.schema)}.flow_adopt($1, $2, $3) as flow_id`, [p.tenantId, p.id, p.flowId])
  return rows[0]!.flow_id
}
