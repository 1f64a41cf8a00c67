import { LIMITS, serializeJson, validateName, withTenantTransaction, type Database } from '@pgqueue/core/internal'
import type { Kysely } from 'kysely'
import type { ProducerContext } from './context.js'
import { decodeCursor, encodeCursor, validateLimit } from './cursor.js'
import { mapTenantErrors } from './db-errors.js'
import { workerMetadataDelete, workerMetadataGet, workerMetadataList, workerMetadataUpsert } from './queries/worker-metadata.js'
import { toMetadataEntry } from './rows.js'
import type { MetadataEntry, Page, PageOptions } from './types.js'

/** Worker metadata: a small per-tenant map of key to JSON value. */
export class TenantWorkerMetadata {
  /** @internal */
  constructor(
    private readonly ctx: ProducerContext,
    readonly tenantId: string,
  ) {}

  /** The value stored under `key`, or undefined. */
  async get(key: string): Promise<unknown> {
    const k = this.check(key)
    const row = await this.inTenant((trx) => workerMetadataGet(trx, { schema: this.ctx.schema, tenantId: this.tenantId, key: k }))
    return row?.value
  }

  /** Stores a JSON value under `key`, replacing any previous one. */
  async set(key: string, value: unknown): Promise<MetadataEntry> {
    const k = this.check(key)
    const json = serializeJson('value', value)
    return toMetadataEntry(await this.inTenant((trx) => workerMetadataUpsert(trx, { schema: this.ctx.schema, tenantId: this.tenantId, key: k, value: json })))
  }

  /** Removes `key`; true when it existed. */
  async delete(key: string): Promise<boolean> {
    const k = this.check(key)
    return this.inTenant((trx) => workerMetadataDelete(trx, { schema: this.ctx.schema, tenantId: this.tenantId, key: k }))
  }

  /** Entries by key, optionally only keys starting with `prefix`. */
  async list(options: PageOptions & { prefix?: string } = {}): Promise<Page<MetadataEntry>> {
    this.ctx.assertOpen()
    const limit = validateLimit(options.limit)
    const prefix = options.prefix === undefined ? undefined : validateName('prefix', options.prefix, LIMITS.key)
    const cursor = decodeCursor(options.cursor, 1)
    const rows = await this.inTenant((trx) =>
      workerMetadataList(trx, {
        schema: this.ctx.schema,
        tenantId: this.tenantId,
        ...(prefix === undefined ? {} : { prefix }),
        ...(cursor ? { afterKey: cursor[0]! } : {}),
        limit: limit + 1,
      }),
    )
    const items = rows.slice(0, limit).map(toMetadataEntry)
    return { items, nextCursor: rows.length > limit ? encodeCursor([items[items.length - 1]!.key]) : null }
  }

  private check(key: string): string {
    this.ctx.assertOpen()
    return validateName('key', key, LIMITS.key)
  }

  private inTenant<T>(fn: (trx: Kysely<Database>) => Promise<T>): Promise<T> {
    return mapTenantErrors(this.tenantId, () => withTenantTransaction(this.ctx.db, this.ctx.options.tenantKey, this.tenantId, fn))
  }
}
