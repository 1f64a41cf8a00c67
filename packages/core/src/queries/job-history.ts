import { quoteIdent } from '../options.js'

/** Every column of job_history, in the order the one history insert writes them. */
export const JOB_HISTORY_COLUMNS = [
  'tenant_id', 'id', 'queue', 'type', 'key', 'state', 'priority', 'payload', 'payload_type', 'target',
  'result', 'result_type', 'error', 'attempt', 'max_attempts', 'schedule_id', 'retry_of',
  'worker_id', 'created_at', 'run_at', 'started_at', 'finished_at', 'flow_id', 'trace_context',
] as const

export type JobHistoryColumn = (typeof JOB_HISTORY_COLUMNS)[number]

/**
 * The one history insert, as SQL text for a statement part (a CTE) that records finished jobs: every
 * column is taken from `from` (rows of the live table, usually a `delete ... returning j.*` CTE) under
 * the same name, except those in `values`, SQL expressions over `from`'s alias. A job's run is
 * recorded by its node id: `worker_id` defaults to the lease owner without its claim token.
 */
export function jobHistoryInsertSql(p: {
  schema: string
  /** A FROM item with an alias, e.g. `gone g`. */
  from: string
  /** The alias of `from`, e.g. `g`. */
  alias: string
  /** SQL per column; `state` and `error` always (the live row has neither). */
  values: { state: string; error: string } & Partial<Record<JobHistoryColumn, string>>
  /** A condition over `from`'s alias: only the rows it holds for are recorded. */
  where?: string
}): string {
  const a = p.alias
  const defaults: Partial<Record<JobHistoryColumn, string>> = {
    result: 'null',
    result_type: 'null',
    // lease_owner is '<nodeId>/<claim token>'; the token holds no slash, the node id may.
    worker_id: `regexp_replace(${a}.lease_owner, '/[^/]*$', '')`,
    finished_at: 'now()',
  }
  const values = JOB_HISTORY_COLUMNS.map((c) => p.values[c] ?? defaults[c] ?? `${a}.${c}`)
  return `insert into ${quoteIdent(p.schema)}.job_history (${JOB_HISTORY_COLUMNS.join(', ')})
       select ${values.join(', ')}
         from ${p.from}${p.where === undefined ? '' : `
        where ${p.where}`}`
}
