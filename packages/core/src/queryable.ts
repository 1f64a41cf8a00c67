import { CompiledQuery, type Kysely } from 'kysely'
import type pg from 'pg'

/** Anything that runs a raw SQL query: a pool, a pool client or a client. The first argument of every
 *  raw-SQL query function (Kysely query functions take a `Kysely<Database>` instead). */
export type Queryable = Pick<pg.Pool, 'query'>

/**
 * A Queryable over a Kysely connection or transaction, so a raw-SQL query function can run inside a
 * transaction opened with Kysely (its statements then share that transaction).
 */
export function queryableOf(db: Kysely<any>): Queryable {
  const query = async (text: string, values?: unknown[]) => {
    const r = await db.executeQuery(CompiledQuery.raw(text, values ?? []))
    return { rows: r.rows, rowCount: r.numAffectedRows === undefined ? r.rows.length : Number(r.numAffectedRows) }
  }
  return { query } as unknown as Queryable
}
