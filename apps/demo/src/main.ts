import pgqueue from 'pgqueue'
import pg from 'pg'
import { onShutdown, openDemoDatabase } from './database.js'
import { parseOptions } from './options.js'

const opts = parseOptions(process.argv.slice(2))
const databaseUrl = process.env.DATABASE_URL || undefined

process.stdout.write(databaseUrl ? 'using DATABASE_URL\n' : 'starting an embedded PostgreSQL 18 (temporary folder, free port)...\n')
const db = await openDemoDatabase({ databaseUrl })
const shutdown = onShutdown(() => db.stop())

try {
  const migrated = await pgqueue.initialize(db.adminUrl, { schema: opts.schema })
  process.stdout.write(`initialize() as lqadmin: schema "${migrated.schema}" at version ${migrated.version} (applied now: ${migrated.applied.join(', ') || 'none'})\n`)
  await describe(db.superUrl, opts.schema)
  await shutdown.run(0)
} catch (err) {
  process.stderr.write(`demo failed: ${(err as Error).stack ?? err}\n`)
  await shutdown.run(1)
}

async function describe(url: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const tables = await client.query<{ name: string; kind: string }>(
      `select c.relname as name, case when c.relkind = 'p' then 'partitioned' else 'table' end as kind
         from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = $1 and c.relkind in ('r', 'p') and not c.relispartition order by 1`,
      [schema],
    )
    process.stdout.write(`tables: ${tables.rows.map((t) => (t.kind === 'partitioned' ? `${t.name} (partitioned)` : t.name)).join(', ')}\n`)
    const roles = await client.query<{ name: string; login: boolean; member_of: string[] }>(
      `select r.rolname::text as name, r.rolcanlogin as login,
              coalesce(array_agg(g.rolname::text order by g.rolname) filter (where g.rolname is not null), '{}') as member_of
         from pg_roles r left join pg_auth_members m on m.member = r.oid left join pg_roles g on g.oid = m.roleid
        where r.rolname in ('lqadmin', 'lqworker', 'lquser', 'queue_worker', 'queue_user')
        group by r.rolname, r.rolcanlogin order by r.rolcanlogin desc, r.rolname`,
    )
    for (const r of roles.rows) {
      process.stdout.write(`role ${r.name.padEnd(13)} ${r.login ? 'LOGIN  ' : 'NOLOGIN'} ${r.member_of.length ? `member of ${r.member_of.join(', ')}` : ''}\n`)
    }
  } finally {
    await client.end()
  }
}
