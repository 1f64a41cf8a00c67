import { sql, type Kysely } from 'kysely'
import { quoteIdent, type Database } from '@pgqueue/core/internal'

/** Deletes node records whose last heartbeat is older than `staleAfterMs` (database time); returns their ids. */
export async function nodesStaleDelete(trx: Kysely<Database>, p: { schema: string; staleAfterMs: number }): Promise<string[]> {
  const { schema } = p
  const { rows } = await sql<{ node_id: string }>`
    delete from ${sql.raw(`${quoteIdent(schema)}.nodes`)}
     where heartbeat_at < now() - make_interval(secs => ${p.staleAfterMs / 1000})
    returning node_id`.execute(trx)
  return rows.map((r) => r.node_id)
}
