/**
 * docs/SCALING.md plans a distributed PostgreSQL (Citus) sharded by tenant_id and places every table:
 * distributed by tenant_id, a reference table (a copy on every node), or kept on the coordinator.
 * This test reads that placement table from the document and checks it against the catalog of a freshly
 * migrated schema, so the plan and the schema cannot drift apart:
 * - every table is placed exactly once, and the document names no table that does not exist;
 * - a table with a tenant_id column is distributed, and a distributed table has one;
 * - every primary key and unique index of a distributed table starts with tenant_id (the distribution
 *   column must be part of it, and leading with it keeps a tenant's rows together), unless the document
 *   lists it as an exception with its reason;
 * - a foreign key from a distributed table points to a reference table, or joins on tenant_id first.
 */
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createIsolatedDatabase, type IsolatedDatabase } from '@pgqueue/testing'
import { migrate } from '@pgqueue/core'

type Placement = 'distributed' | 'reference' | 'coordinator'

const doc = readFileSync(resolve(import.meta.dirname, '../../../docs/SCALING.md'), 'utf8')

/** The first backquoted name of each table row between two HTML comment markers. */
function namesBetween(marker: string): Array<{ name: string; cells: string[] }> {
  const start = doc.indexOf(`<!-- ${marker}:start -->`)
  const end = doc.indexOf(`<!-- ${marker}:end -->`)
  if (start < 0 || end < start) throw new Error(`docs/SCALING.md has no ${marker} section`)
  return doc
    .slice(start, end)
    .split('\n')
    .filter((line) => /^\|\s*`/.test(line))
    .map((line) => {
      const cells = line.split('|').slice(1, -1).map((c) => c.trim())
      return { name: cells[0]!.replace(/`/g, ''), cells }
    })
}

const placements = namesBetween('placement').map(({ name, cells }) => ({ name, placement: cells[1] as Placement }))
const exceptions = new Set(namesBetween('key-exceptions').map((e) => e.name))

let t: IsolatedDatabase
beforeAll(async () => {
  t = await createIsolatedDatabase('scaling')
  await migrate(t.adminUrl, t.schemaOptions)
})
afterAll(async () => {
  await t.cleanup()
})

describe('docs/SCALING.md against the schema', () => {
  it('places every table once, as distributed, reference or coordinator', async () => {
    for (const p of placements) expect(['distributed', 'reference', 'coordinator'], p.name).toContain(p.placement)
    const names = placements.map((p) => p.name)
    expect(new Set(names).size, 'a table is placed twice').toBe(names.length)
    const { rows } = await t.admin.query<{ relname: string }>(
      `select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = $1 and c.relkind in ('r', 'p') and not c.relispartition order by 1`,
      [t.schema],
    )
    expect([...names].sort()).toEqual(rows.map((r) => r.relname))
  })

  it('distributes exactly the tables that hold tenant_id', async () => {
    const { rows } = await t.admin.query<{ relname: string; has_tenant: boolean }>(
      `select c.relname, exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped) as has_tenant
         from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = $1 and c.relkind in ('r', 'p') and not c.relispartition`,
      [t.schema],
    )
    const placed = new Map(placements.map((p) => [p.name, p.placement]))
    for (const r of rows) expect(placed.get(r.relname) === 'distributed', `${r.relname}: tenant_id ${r.has_tenant ? 'present' : 'absent'}`).toBe(r.has_tenant)
  })

  it('starts every primary key and unique index of a distributed table with tenant_id', async () => {
    const distributed = placements.filter((p) => p.placement === 'distributed').map((p) => p.name)
    const { rows } = await t.admin.query<{ table: string; index: string; first: string; def: string }>(
      `select r.relname as table, c.relname as index, a.attname as first, pg_get_indexdef(i.indexrelid) as def
         from pg_index i join pg_class c on c.oid = i.indexrelid join pg_class r on r.oid = i.indrelid
         join pg_namespace n on n.oid = r.relnamespace
         left join pg_attribute a on a.attrelid = r.oid and a.attnum = i.indkey[0]
        where n.nspname = $1 and i.indisunique and not r.relispartition and r.relname = any($2)
        order by 1, 2`,
      [t.schema, distributed],
    )
    expect(rows.length).toBeGreaterThan(0)
    const offending = rows.filter((r) => r.first !== 'tenant_id' && !exceptions.has(r.index)).map((r) => r.def)
    expect(offending).toEqual([])
    // An exception that no longer exists (or now starts with tenant_id) is stale documentation.
    for (const name of exceptions) expect(rows.some((r) => r.index === name && r.first !== 'tenant_id'), `exception ${name}`).toBe(true)
  })

  it('lets no foreign key of a distributed table cross tenants', async () => {
    const placed = new Map(placements.map((p) => [p.name, p.placement]))
    const { rows } = await t.admin.query<{ name: string; from_table: string; to_table: string; from_first: string; to_first: string }>(
      `select k.conname as name, r.relname as from_table, f.relname as to_table,
              (select attname from pg_attribute where attrelid = k.conrelid and attnum = k.conkey[1]) as from_first,
              (select attname from pg_attribute where attrelid = k.confrelid and attnum = k.confkey[1]) as to_first
         from pg_constraint k join pg_class r on r.oid = k.conrelid join pg_class f on f.oid = k.confrelid
         join pg_namespace n on n.oid = r.relnamespace
        where n.nspname = $1 and k.contype = 'f' and not r.relispartition`,
      [t.schema],
    )
    for (const fk of rows) {
      if (placed.get(fk.from_table) !== 'distributed') continue
      const ok = placed.get(fk.to_table) === 'reference' || (fk.from_first === 'tenant_id' && fk.to_first === 'tenant_id')
      expect(ok, `${fk.name}: ${fk.from_table} -> ${fk.to_table}`).toBe(true)
    }
  })
})
