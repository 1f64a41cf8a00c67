/**
 * One library, one case, one repetition, in a process of its own:
 *   <node> --import tsx --conditions=@pgqueue/source src/child.ts <lib> <case> <json>
 * json: { adminUrl, schema, rolePrefix, params }. Prints one line `@@bench-result {json}` on stdout.
 */
import pg from 'pg'
import { caseById } from './cases/index.js'
import { loadAdapter } from './libs/index.js'
import { RESULT_MARK, type LibName } from './types.js'

async function main(): Promise<void> {
  const [lib, caseId, json] = process.argv.slice(2) as [LibName, string, string]
  const args = JSON.parse(json) as { adminUrl: string; schema: string; rolePrefix: string; params: Record<string, number> }
  const def = caseById(caseId)
  const adapter = await loadAdapter(lib)
  const admin = new pg.Pool({ connectionString: args.adminUrl, max: 1 })
  admin.on('error', () => {})
  const out = (o: object): void => void process.stdout.write(`${RESULT_MARK}${JSON.stringify(o)}\n`)
  try {
    await adapter.setup(args.adminUrl, { schema: args.schema, rolePrefix: args.rolePrefix }, { lowLatency: caseId === 'latency' })
    const result = await def.run(
      {
        lib: adapter,
        log: (line) => process.stderr.write(`[${lib} ${caseId}] ${line}\n`),
        analyze: async () => {
          const { rows } = await admin.query<{ t: string }>(
            `select format('%I.%I', n.nspname, c.relname) as t from pg_class c join pg_namespace n on n.oid = c.relnamespace
              where n.nspname = $1 and c.relkind in ('r', 'p') and not c.relispartition`,
            [args.schema],
          )
          for (const r of rows) await admin.query(`analyze ${r.t}`)
        },
        holdSnapshot: async () => {
          const holder = new pg.Client({ connectionString: args.adminUrl, application_name: 'bench-long-transaction' })
          holder.on('error', () => {})
          await holder.connect()
          await holder.query('begin isolation level repeatable read')
          // The snapshot is taken by the first statement, not by BEGIN.
          await holder.query('select count(*) from pg_class')
          return async () => {
            await holder.query('rollback').catch(() => {})
            await holder.end().catch(() => {})
          }
        },
        serverCounters: async () => {
          await new Promise((r) => setTimeout(r, 1_500))
          const { rows } = await admin.query<Record<string, string>>(
            `select xact_commit + xact_rollback as xacts, blks_hit + blks_read as blocks, tup_returned + tup_fetched as rows_read,
                    tup_inserted + tup_updated + tup_deleted as rows_written
               from pg_stat_database where datname = current_database()`,
          )
          return Object.fromEntries(Object.entries(rows[0] ?? {}).map(([k, v]) => [k, Number(v)]))
        },
        deadTuples: async () => {
          // The counters are flushed by each backend every second or so; wait for this run's to land.
          await new Promise((r) => setTimeout(r, 1_500))
          const { rows } = await admin.query<{ n: string | null }>(
            `select sum(n_dead_tup) as n from pg_stat_all_tables where schemaname = $1`,
            [args.schema],
          )
          return Number(rows[0]?.n ?? 0)
        },
      },
      args.params,
    )
    out({ ok: true, config: adapter.config, runtime: process.version, ...result })
  } catch (err) {
    const e = err as Error & { notAvailable?: boolean }
    out({ ok: false, notAvailable: Boolean(e.notAvailable), config: adapter.config, runtime: process.version, error: e.message })
  } finally {
    await adapter.close().catch(() => {})
    await admin.end().catch(() => {})
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`${(err as Error).stack}\n`)
    process.exit(1)
  },
)
