import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import { dirname, join } from 'node:path'
import pg from 'pg'
import { cases as allCases, type CaseDef, type Mode } from './cases/index.js'
import { buildCase, evaluateGoals, renderText, type Environment, type Report } from './report.js'
import { isServerGone, node24Path, runChild, waitForDatabase, type ChildOutcome } from './runner.js'
import type { LibName } from './types.js'

export interface BenchOptions {
  mode: Mode
  reps: number
  databaseUrl: string
  databaseSource: string
  /** Case ids and/or library names to keep (empty: all). */
  only: string[]
  /** Where the JSON goes. */
  out: string
  log: (line: string) => void
}

const require = createRequire(import.meta.url)
/** A dependency's version, read from its package.json (found by walking up from its entry point,
 *  since not every package exports ./package.json). */
const versionOf = (pkg: string): string => {
  try {
    let dir = dirname(require.resolve(pkg))
    for (let i = 0; i < 5; i++, dir = dirname(dir)) {
      try {
        const json = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version: string }
        if (json.name === pkg) return json.version
      } catch {
        // no package.json at this level
      }
    }
  } catch {
    // not resolvable
  }
  return 'unknown'
}

async function environment(url: string, source: string): Promise<Environment> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const version = (await client.query<{ v: string }>('select version() as v')).rows[0]!.v.split(' on ')[0]!
    const settings: Record<string, string> = {}
    for (const name of ['shared_buffers', 'synchronous_commit', 'max_connections', 'work_mem']) {
      settings[name] = (await client.query<{ v: string }>(`select current_setting($1) as v`, [name])).rows[0]!.v
    }
    return {
      postgres: version,
      postgresSettings: settings,
      databaseSource: source,
      node24: execFileSync(node24Path(), ['--version'], { encoding: 'utf8' }).trim(),
      nodeMachine: process.version,
      cores: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? 'unknown',
      memoryGb: Math.round(os.totalmem() / 2 ** 30),
      loadAvgStart: os.loadavg(),
      versions: { 'pg-boss': versionOf('pg-boss'), 'graphile-worker': versionOf('graphile-worker'), pg: versionOf('pg'), pgqueue: versionOf('@pgqueue/core') },
    }
  } finally {
    await client.end()
  }
}

/** pg_postmaster_start_time(), to tell whether the server restarted while a child ran. */
async function serverStartTime(url: string): Promise<string> {
  const client = new pg.Client({ connectionString: url })
  client.on('error', () => {})
  try {
    await client.connect()
    return (await client.query<{ t: string }>('select pg_postmaster_start_time()::text as t')).rows[0]!.t
  } finally {
    await client.end().catch(() => {})
  }
}

/** Which cases and libraries run, after --full and --only. */
export function plan(mode: Mode, only: string[]): { def: CaseDef; libs: LibName[] }[] {
  const caseIds = new Set(allCases.map((c) => c.id))
  const wantCases = only.filter((o) => caseIds.has(o))
  const wantLibs = only.filter((o) => !caseIds.has(o))
  return allCases
    .filter((c) => (wantCases.length ? wantCases.includes(c.id) : mode === 'full' || (!c.fullOnly && !(mode === 'quick' && c.notQuick))))
    .map((def) => ({ def, libs: def.libs.filter((l) => !wantLibs.length || wantLibs.includes(l)) }))
    .filter((p) => p.libs.length > 0)
}

const childTimeout = (mode: Mode, params: Record<string, number>): number =>
  (params.timeoutMs ?? (mode === 'quick' ? 30_000 : 120_000)) + (mode === 'full' ? 900_000 : mode === 'quick' ? 30_000 : 300_000)

/**
 * Runs every (case, library) pair `reps` times, repetition-major (so slow drifts in machine load spread
 * over all libraries), each in a child process on a fresh schema, then prints and saves the report.
 */
export async function runBench(o: BenchOptions): Promise<Report> {
  const startedAt = new Date().toISOString()
  const env = await environment(o.databaseUrl, o.databaseSource)
  const steps = plan(o.mode, o.only)
  const results = new Map<string, Map<LibName, ChildOutcome[]>>()
  for (const { def, libs } of steps) results.set(def.id, new Map(libs.map((l) => [l, []])))
  const total = steps.reduce((n, s) => n + s.libs.length * (s.def.oneRep ? 1 : o.reps), 0)
  let done = 0
  for (let rep = 1; rep <= o.reps; rep++) {
    for (const { def, libs } of steps) {
      if (def.oneRep && rep > 1) continue
      const params = def.params(o.mode)
      for (const lib of libs) {
        let r: ChildOutcome
        for (let attempt = 1; ; attempt++) {
          await waitForDatabase(o.databaseUrl)
          const before = await serverStartTime(o.databaseUrl)
          r = await runChild(o.databaseUrl, lib, def.id, params, childTimeout(o.mode, params), o.log)
          await waitForDatabase(o.databaseUrl)
          const restarted = (await serverStartTime(o.databaseUrl)) !== before
          // A server restart under the child (another process did it) says nothing about the library: run it again, once.
          if (!(restarted || (!r.ok && isServerGone(r.error))) || attempt >= 2) {
            if (restarted) r = { ...r, ok: false, error: `PostgreSQL restarted during the run twice: ${r.error ?? 'result discarded'}` }
            break
          }
          o.log(`  ${def.id} ${lib}: PostgreSQL restarted during this child; running it again`)
        }
        results.get(def.id)!.get(lib)!.push(r)
        done++
        const shown = r.ok ? `${r.value} ${r.unit}` : `${r.notAvailable ? 'n/a' : 'FAILED'}: ${r.error}`
        o.log(`[${done}/${total}] rep ${rep} ${def.id} ${lib}: ${shown} (${(r.wallMs / 1000).toFixed(1)} s)`)
        // Saved after every child, so an interrupted run still leaves what it measured.
        save(o, env, startedAt, steps, results, true)
      }
    }
  }
  env.loadAvgEnd = os.loadavg()
  return save(o, env, startedAt, steps, results, false)
}

/** Builds the report from what has run so far and writes the JSON and the Markdown beside it. */
function save(o: BenchOptions, env: Environment, startedAt: string, steps: { def: CaseDef }[], results: Map<string, Map<LibName, ChildOutcome[]>>, partial: boolean): Report {
  const caseReports = steps.map(({ def }) => buildCase(def, def.params(o.mode), results.get(def.id)!))
  const report: Report = {
    mode: o.mode,
    reps: o.reps,
    ...(partial ? { partial: true } : {}),
    startedAt,
    finishedAt: new Date().toISOString(),
    environment: env,
    cases: caseReports,
    goals: evaluateGoals(caseReports),
  }
  mkdirSync(dirname(o.out), { recursive: true })
  writeFileSync(o.out, `${JSON.stringify(report, null, 2)}\n`)
  writeFileSync(o.out.replace(/\.json$/, '.md'), renderText(report))
  return report
}

export const defaultOut = (): string => join(dirname(require.resolve('../package.json')), 'results', 'latest.json')
