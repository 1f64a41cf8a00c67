import { sql, type Kysely } from 'kysely'
import { quoteIdent } from '@pgqueue/core/internal'

/** A weight or a back-off row, as the database returns it. */
export interface FairnessRow {
  kind: 'weight' | 'back-off'
  tenant_id: string
  queue: string
  weight: number | null
  until: Date | null
}

/**
 * Operator weights and the back-offs still running (fair_blocks until later), of one tenant or all.
 * Both tables are readable by the worker role and the owner only.
 */
export async function fairnessSettings(db: Kysely<any>, schema: string, p: { tenantId?: string }): Promise<FairnessRow[]> {
  const s = quoteIdent(schema)
  const tenant = p.tenantId === undefined ? sql`true` : sql`tenant_id = ${p.tenantId}`
  const { rows } = await sql<FairnessRow>`
    select 'weight' as kind, tenant_id, queue, weight, null::timestamptz as until
      from ${sql.raw(`${s}.fair_weights`)} where ${tenant}
    union all
    select 'back-off', tenant_id, queue, null, until
      from ${sql.raw(`${s}.fair_blocks`)} where until > now() and ${tenant}
     order by 2, 3, 1`.execute(db)
  return rows
}
