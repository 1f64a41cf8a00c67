import { quoteIdent, type Queryable } from '@pgqueue/core/internal'

/**
 * Why the current login is not confined to one tenant by row-level security on the jobs table, or null
 * when it is: RLS is not active for it at all (superuser, owner, BYPASSRLS), or a permissive policy with
 * `true` applies to one of its roles (the worker role's).
 */
export async function loginBypassesTenantScope(db: Queryable, params: { schema: string }): Promise<string | null> {
  const { rows } = await db.query<{ rls_active: boolean; unscoped_role: string | null; login: string }>(
    `select row_security_active(format('%s.jobs', $1::text)::regclass) as rls_active, current_user as login,
            (select r from pg_policies p, unnest(p.roles) r
              where p.schemaname = $2 and p.tablename = 'jobs' and p.qual = 'true' and pg_has_role(current_user, r, 'member')
              limit 1) as unscoped_role`,
    [quoteIdent(params.schema), params.schema],
  )
  const row = rows[0]
  if (row === undefined) return null
  if (!row.rls_active) return `${row.login} bypasses row-level security (superuser, owner or BYPASSRLS)`
  if (row.unscoped_role !== null) return `${row.login} is a member of ${row.unscoped_role}, which sees every tenant`
  return null
}
