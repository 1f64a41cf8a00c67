import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Kysely, PostgresDialect } from 'kysely'
import { createIsolatedDatabase, pushJobs, type IsolatedDatabase } from '@pgqueue/testing'
import { createHistoryPartition, migrate, type Database } from '@pgqueue/core/internal'

let t: IsolatedDatabase
let s: string
beforeAll(async () => {
  t = await createIsolatedDatabase('collation')
  await migrate(t.adminUrl, t.schemaOptions)
  s = `"${t.schema}"`
})
afterAll(async () => {
  await t.cleanup()
})

/** Text columns that some index compares, with their collation, over every table and partition of the schema. */
async function indexedTextColumns(): Promise<{ rel: string; col: string; coll: string }[]> {
  const { rows } = await t.admin.query(
    `select distinct c.relname as rel, a.attname as col, coalesce(co.collname, '') as coll
       from pg_index i
       join pg_class c on c.oid = i.indrelid
       join pg_namespace n on n.oid = c.relnamespace and n.nspname = $1
       join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey::int2[])
       left join pg_collation co on co.oid = a.attcollation
      where a.atttypid = 'text'::regtype and c.relname <> 'migrations'
      order by 1, 2`,
    [t.schema],
  )
  return rows
}

describe('identifier collation (migration 0017)', () => {
  it('every text column an index compares is C-collated, partitions included', async () => {
    const cols = await indexedTextColumns()
    expect(cols.map((c) => `${c.rel}.${c.col}`)).toEqual(expect.arrayContaining(['jobs.tenant_id', 'jobs.queue', 'jobs.key', 'jobs.state', 'job_history_default.tenant_id', 'queues.queue', 'completion_counts.tenant_id']))
    expect(cols.filter((c) => c.coll !== 'C')).toEqual([])
  })

  it('a history partition made later gets the parent collation and attaches', async () => {
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: t.admin }) })
    const part = await createHistoryPartition(db, new Date(Date.now() + 5 * 86_400_000), { schema: t.schema })
    expect(part.created).toBe(true)
    const { rows } = await t.admin.query(
      `select a.attname, co.collname from pg_attribute a join pg_collation co on co.oid = a.attcollation
        where a.attrelid = $1::regclass and a.attname in ('tenant_id', 'queue', 'type', 'key', 'state') order by 1`,
      [`${s}.${part.name}`],
    )
    expect(rows.map((r) => r.collname)).toEqual(['C', 'C', 'C', 'C', 'C'])
    await t.admin.query(`drop table ${s}.${part.name}`)
  })

  it('parameters and literals compared with the columns still use the indexes, and ORDER BY needs no sort', async () => {
    for (let i = 0; i < 40; i++) await pushJobs(t.admin, t.schema, `tenant-${i}`, `q${i % 4}`, 100, { keys: Array.from({ length: 100 }, (_, k) => (k % 2 ? `k${k}` : null)) })
    await t.admin.query(`insert into ${s}.job_history (tenant_id, id, queue, type, state, attempt, max_attempts, created_at, run_at, finished_at)
                         select tenant_id, id, queue, type, 'completed', 1, 5, created_at, run_at, now() from ${s}.jobs`)
    await t.admin.query(`insert into ${s}.queues (tenant_id, queue) select 'tenant-' || (i % 1000), 'queue-' || i from generate_series(1, 4000) i`)
    for (const table of ['jobs', 'job_history', 'queues']) await t.admin.query(`analyze ${s}.${table}`)
    const c = await t.admin.connect()
    try {
      // Generic plans: the parameters' own (default) collation, as prepared statements see them.
      await c.query(`set plan_cache_mode = force_generic_plan`)
      // With sorts priced out, an ORDER BY on a text key is served by an index only when the index's
      // collation is the one the query compares in: a remaining Sort on such a key would show a mismatch.
      await c.query(`set enable_sort = off`)
      const plan = async (name: string, text: string, args: unknown[]) => {
        await c.query(`prepare ${name} as ${text}`)
        const { rows } = await c.query(`explain (costs off) execute ${name}(${args.map((a) => `'${a}'`).join(', ')})`)
        return rows.map((r) => r['QUERY PLAN']).join('\n')
      }
      const cases: [string, string, unknown[], RegExp][] = [
        ['claim', `select ctid from ${s}.jobs j where j.queue = $1 and j.state = 'pending' order by j.vt limit $2 for update skip locked`, ['q1', 100], /Index Scan using jobs_claim_idx/],
        ['tenants', `select j.tenant_id from ${s}.jobs j where j.state = 'pending' and j.tenant_id > $1 order by j.tenant_id limit 1`, ['tenant-1'], /Index (Only )?Scan using jobs_(state|tenant_claim)_idx/],
        ['by_id', `select * from ${s}.jobs where tenant_id = $1 and id = $2`, ['tenant-3', '00000000-0000-7000-8000-000000000000'], /Index Scan using jobs_pkey/],
        ['by_key', `select id from ${s}.jobs where tenant_id = $1 and queue = $2 and key = $3`, ['tenant-3', 'q3', 'k1'], /Index Scan using jobs_key_idx on jobs\s+Index Cond: \(\(tenant_id = \$1\) AND \(queue = \$2\) AND \(key = \$3\)\)/],
        ['list', `select id from ${s}.jobs where tenant_id = $1 and queue = $2 order by id desc limit 50`, ['tenant-3', 'q3'], /jobs_pkey[^]*Index Cond: \(tenant_id = \$1\)/],
        ['history', `select id from ${s}.job_history where tenant_id = $1 and queue = $2 order by finished_at desc, id desc limit 50`, ['tenant-3', 'q3'], /Index Cond: \(\(tenant_id = \$1\) AND \(queue = \$2\)\)/],
        ['history_id', `select id from ${s}.job_history where tenant_id = $1 and id = $2`, ['tenant-3', '00000000-0000-7000-8000-000000000000'], /job_history_default_tenant_id_id_idx/],
        ['queues', `select queue from ${s}.queues where tenant_id = $1 and queue > $2 order by queue limit 10`, ['tenant-3', 'q0'], /Index (Only )?Scan using queues_pkey/],
      ]
      for (const [name, text, args, want] of cases) {
        const p = await plan(name, text, args)
        expect(p, name).toMatch(want)
        expect(p, name).not.toMatch(/Seq Scan|Sort Key: [^\n]*(tenant_id|queue|key)/)
      }
      // A literal compares in the column's collation too.
      const { rows } = await c.query(`explain (costs off) select queue from ${s}.queues where tenant_id = 'tenant-3' order by queue`)
      expect(rows.map((r) => r['QUERY PLAN']).join('\n')).not.toMatch(/Sort Key/)
    } finally {
      await c.query('discard all')
      c.release()
    }
  })
})
