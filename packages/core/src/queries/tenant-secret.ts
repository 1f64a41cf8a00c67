import { quoteIdent } from '../options.js'
import type { Queryable } from '../queryable.js'

/** Replaces the installation's tenant secret (schema owner only). Tokens signed with the old one stop working. */
export async function tenantSecretSet(db: Queryable, p: { schema: string; secret: string }): Promise<void> {
  await db.query(`select ${quoteIdent(p.schema)}.set_tenant_secret($1)`, [p.secret])
}

/** The installation's tenant secret (schema owner only), or undefined before migration 12. */
export async function tenantSecretGet(db: Queryable, p: { schema: string }): Promise<string | undefined> {
  const { rows } = await db.query<{ secret: string }>(`select secret from ${quoteIdent(p.schema)}.tenant_secret`)
  return rows[0]?.secret
}
