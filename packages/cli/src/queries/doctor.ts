import type pg from 'pg'
import { quoteIdent, quoteLiteral } from '@pgqueue/core/internal'

type Db = Pick<pg.Pool, 'query'>

/** A role as the catalog describes it. */
export interface RoleRow {
  name: string
  exists: boolean
  canLogin: boolean
  superuser: boolean
  bypassRls: boolean
  /** Logins that are members (directly or not); superusers left out (they bypass everything anyway). */
  members: string[]
}

/** The two group roles, and whether one is a member of the other. */
export async function rolesRead(db: Db, p: { workerRole: string; userRole: string }): Promise<{ roles: RoleRow[]; nested: boolean; loginsInBoth: string[] }> {
  const { rows } = await db.query<RoleRow>(
    `select r.name, g.oid is not null as exists, coalesce(g.rolcanlogin, false) as "canLogin",
            coalesce(g.rolsuper, false) as superuser, coalesce(g.rolbypassrls, false) as "bypassRls",
            coalesce((select array_agg(m.rolname::text order by m.rolname) from pg_roles m
                       where m.rolcanlogin and not m.rolsuper and g.oid is not null and m.oid <> g.oid and pg_has_role(m.oid, g.oid, 'member')), '{}'::text[]) as members
       from unnest($1::text[]) with ordinality as r(name, i)
       left join pg_roles g on g.rolname = r.name
      order by r.i`,
    [[p.workerRole, p.userRole]],
  )
  const { rows: nested } = await db.query<{ nested: boolean }>(
    `select coalesce(bool_or(pg_has_role(a.oid, b.oid, 'member')), false) as nested
       from pg_roles a, pg_roles b
      where (a.rolname, b.rolname) in (($1, $2), ($2, $1))`,
    [p.workerRole, p.userRole],
  )
  const worker = rows[0]?.members ?? []
  const user = new Set(rows[1]?.members ?? [])
  return { roles: rows, nested: nested[0]?.nested ?? false, loginsInBoth: worker.filter((m) => user.has(m)) }
}

/** A table of the schema that holds tenant rows, with its RLS state and what the group roles may do on it. */
export interface TenantTableRow {
  name: string
  isPartition: boolean
  rlsEnabled: boolean
  policies: number
  /** Privileges the worker / user role hold on it (SELECT, INSERT, UPDATE, DELETE), directly or through PUBLIC. */
  workerPrivileges: string[]
  userPrivileges: string[]
}

/** Every table and partition of the schema with a tenant_id column. */
export async function tenantTablesRead(db: Db, p: { schema: string; workerRole: string; userRole: string }): Promise<TenantTableRow[]> {
  const { rows } = await db.query<TenantTableRow>(
    `with t as (
       select c.oid, c.relname, c.relispartition, c.relrowsecurity
         from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = $1 and c.relkind in ('r', 'p')
          and exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped))
     select relname as name, relispartition as "isPartition", relrowsecurity as "rlsEnabled",
            (select count(*)::int from pg_policy pol where pol.polrelid = t.oid) as policies,
            array(select priv from unnest(array['SELECT','INSERT','UPDATE','DELETE']) priv
                   where to_regrole($2) is not null and has_table_privilege($2, t.oid, priv)) as "workerPrivileges",
            array(select priv from unnest(array['SELECT','INSERT','UPDATE','DELETE']) priv
                   where to_regrole($3) is not null and has_table_privilege($3, t.oid, priv)) as "userPrivileges"
       from t order by relispartition, relname`,
    [p.schema, p.workerRole, p.userRole],
  )
  return rows
}

/** Privileges the group roles hold on the owner-only tables (migrations, tenant_secret, locks). */
export async function ownerOnlyTablesRead(db: Db, p: { schema: string; workerRole: string; userRole: string }): Promise<{ table: string; role: string }[]> {
  const { rows } = await db.query<{ table: string; role: string }>(
    `select t.name as table, r.name as role
       from unnest(array['migrations', 'tenant_secret', 'locks']) t(name)
      cross join unnest($2::text[]) r(name)
      where to_regclass(quote_ident($1) || '.' || t.name) is not null and to_regrole(r.name) is not null
        and has_table_privilege(r.name, to_regclass(quote_ident($1) || '.' || t.name), 'SELECT,INSERT,UPDATE,DELETE')`,
    [p.schema, [p.workerRole, p.userRole]],
  )
  return rows
}

/** Dead tuples and sizes of the schema's tables (partitions included). */
export interface TableStatsRow {
  name: string
  liveTuples: number
  deadTuples: number
  totalBytes: number
  lastAutovacuum: Date | null
}

export async function tableStatsRead(db: Db, p: { schema: string }): Promise<TableStatsRow[]> {
  const { rows } = await db.query<TableStatsRow>(
    `select relname as name, n_live_tup::float8 as "liveTuples", n_dead_tup::float8 as "deadTuples",
            pg_total_relation_size(relid)::float8 as "totalBytes", greatest(last_autovacuum, last_vacuum) as "lastAutovacuum"
       from pg_stat_user_tables where schemaname = $1 order by n_dead_tup desc`,
    [p.schema],
  )
  return rows
}

/** Whether the default history partition holds rows (Maintenance moves them into their own partition). */
export async function defaultPartitionHasRows(db: Db, p: { schema: string }): Promise<boolean | null> {
  const name = `${quoteIdent(p.schema)}.job_history_default`
  const { rows } = await db.query<{ exists: boolean | null }>(
    `select case when to_regclass(${quoteLiteral(name)}) is null then null
                 else exists (select 1 from ${name}) end as exists`,
  )
  return rows[0]?.exists ?? null
}

/** A session that keeps VACUUM from removing dead rows: a long transaction, or one idle in transaction. */
export interface HoldingSessionRow {
  pid: number
  user: string | null
  application: string | null
  state: string | null
  transactionAgeS: number
  xminAge: number | null
}

/** Sessions in a transaction for longer than `minAgeS` seconds that hold a snapshot (backend_xmin). */
export async function sessionsHoldingVacuum(db: Db, p: { minAgeS: number }): Promise<HoldingSessionRow[]> {
  const { rows } = await db.query<HoldingSessionRow>(
    `select pid, usename as user, application_name as application, state,
            round(extract(epoch from now() - xact_start))::float8 as "transactionAgeS",
            age(backend_xmin)::float8 as "xminAge"
       from pg_stat_activity
      where pid <> pg_backend_pid() and xact_start is not null and backend_xmin is not null
        and xact_start < now() - make_interval(secs => $1)
      order by xact_start limit 20`,
    [p.minAgeS],
  )
  return rows
}

/** Prepared transactions and replication slots that hold back the xmin horizon. */
export async function horizonHoldersRead(db: Db): Promise<{ preparedOld: number; slotsHolding: string[] }> {
  const { rows } = await db.query<{ prepared: number; slots: string[] }>(
    `select (select count(*)::int from pg_prepared_xacts where prepared < now() - interval '5 minutes') as prepared,
            array(select slot_name::text from pg_replication_slots where not active and (xmin is not null or catalog_xmin is not null)) as slots`,
  )
  return { preparedOld: rows[0]?.prepared ?? 0, slotsHolding: rows[0]?.slots ?? [] }
}

/** The backend pid and the server's port, as the connection sees them (for the pooler guess). */
export async function backendRead(db: Db): Promise<{ pid: number; port: number | null }> {
  const { rows } = await db.query<{ pid: number; port: number | null }>('select pg_backend_pid() as pid, inet_server_port() as port')
  return rows[0]!
}
