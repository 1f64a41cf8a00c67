import { sql, type Kysely } from 'kysely'
import type { Database } from '@pgqueue/core/internal'

/** A worker_metadata row. */
export interface MetadataRow {
  key: string
  value: unknown
  updated_at: Date
}

/** The value of one key, or undefined. */
export async function workerMetadataGet(db: Kysely<Database>, params: { schema: string; tenantId: string; key: string }): Promise<MetadataRow | undefined> {
  return (await db.withSchema(params.schema).selectFrom('worker_metadata').select(['key', 'value', 'updated_at'])
    .where('tenant_id', '=', params.tenantId).where('key', '=', params.key).executeTakeFirst()) as MetadataRow | undefined
}

/** Sets one key to a JSON value (text), replacing any previous value. */
export async function workerMetadataUpsert(db: Kysely<Database>, params: { schema: string; tenantId: string; key: string; value: string }): Promise<MetadataRow> {
  return (await db.withSchema(params.schema).insertInto('worker_metadata')
    .values({ tenant_id: params.tenantId, key: params.key, value: params.value })
    .onConflict((oc) => oc.columns(['tenant_id', 'key']).doUpdateSet({ value: params.value, updated_at: sql<Date>`now()` }))
    .returning(['key', 'value', 'updated_at']).executeTakeFirstOrThrow()) as MetadataRow
}

/** Removes one key through worker_metadata_delete() (the user role has no DELETE); true when it existed. */
export async function workerMetadataDelete(db: Kysely<Database>, params: { schema: string; tenantId: string; key: string }): Promise<boolean> {
  const { rows } = await sql<{ deleted: boolean }>`
    select ${sql.id(params.schema, 'worker_metadata_delete')}(${params.tenantId}, ${params.key}) as deleted`.execute(db)
  return rows[0]?.deleted === true
}

/** Entries by key, keyset on the key, optionally only keys starting with `prefix`. */
export async function workerMetadataList(
  db: Kysely<Database>,
  params: { schema: string; tenantId: string; prefix?: string; afterKey?: string; limit: number },
): Promise<MetadataRow[]> {
  let q = db.withSchema(params.schema).selectFrom('worker_metadata').select(['key', 'value', 'updated_at']).where('tenant_id', '=', params.tenantId)
  // starts_with() instead of LIKE, so % and _ in a prefix are plain characters.
  if (params.prefix !== undefined) q = q.where(sql<boolean>`starts_with(key, ${params.prefix})`)
  if (params.afterKey !== undefined) q = q.where('key', '>', params.afterKey)
  return (await q.orderBy('key').limit(params.limit).execute()) as MetadataRow[]
}
