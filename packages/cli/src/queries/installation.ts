import type pg from 'pg'
import { quoteIdent, quoteLiteral } from '@pgqueue/core/internal'

/** What the database says about an installation, read with whatever login the command has. */
export interface InstallationRow {
  /** Highest applied migration; 0 when the schema is missing. */
  version: number
  /** The login's pgqueue role; undefined when the schema predates installation() (version < 12). */
  loginRole: 'owner' | 'worker' | 'user' | 'none' | undefined
  schemaExists: boolean
}

/**
 * installation() (migration 12) answers for any login; before it, only the owner can read the
 * migrations table. A missing schema is version 0.
 */
export async function installationRead(db: Pick<pg.Pool, 'query'>, schema: string): Promise<InstallationRow> {
  const { rows: found } = await db.query<{ ok: boolean; fn: boolean }>(
    `select exists (select 1 from pg_namespace where nspname = $1) as ok,
            to_regprocedure(${quoteLiteral(`${quoteIdent(schema)}.installation()`)}) is not null as fn`,
    [schema],
  )
  if (!found[0]?.ok) return { version: 0, loginRole: undefined, schemaExists: false }
  if (found[0].fn) {
    const { rows } = await db.query<{ version: number | null; login_role: InstallationRow['loginRole'] }>(`select version, login_role from ${quoteIdent(schema)}.installation()`)
    return { version: rows[0]?.version ?? 0, loginRole: rows[0]?.login_role, schemaExists: true }
  }
  const { rows } = await db.query<{ version: number | null }>(
    `select case when to_regclass(${quoteLiteral(`${quoteIdent(schema)}.migrations`)}) is null then 0
                 else (select max(version) from ${quoteIdent(schema)}.migrations) end as version`,
  )
  return { version: rows[0]?.version ?? 0, loginRole: undefined, schemaExists: true }
}
