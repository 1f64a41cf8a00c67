import { spawn, type ChildProcess } from 'node:child_process'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { uuidv7 } from '@pgqueue/core/internal'
import type { TenantQueues } from '@pgqueue/producer'
import { sleep } from './harness.js'

const here = dirname(fileURLToPath(import.meta.url))
const packageRoot = resolve(here, '..')

/** One child process running a pgqueue component. */
export interface Child {
  name: string
  kind: 'worker' | 'scheduler'
  proc: ChildProcess
  ready: Promise<void>
  exited: Promise<number | null>
  /** The last 'stats' line it printed. */
  stats: Record<string, unknown>
  /** Every stats line, for RSS over time. */
  history: Array<Record<string, unknown>>
  killed: boolean
}

/** Spawns and kills component processes; every child is killed at the end, by its pid only. */
export class Cluster {
  readonly children: Child[] = []
  kills = 0
  private seq = 0

  constructor(private readonly baseEnv: Record<string, string>) {}

  spawn(kind: Child['kind'], env: Record<string, string> = {}): Child {
    const name = `${kind}-${++this.seq}`
    const script = kind === 'worker' ? 'worker-process.ts' : 'scheduler-process.ts'
    const proc = spawn(process.execPath, ['--import', 'tsx', '--conditions=@pgqueue/source', resolve(here, script)], {
      cwd: packageRoot,
      env: { ...process.env, ...this.baseEnv, PGQ_NODE: name, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const child: Child = { name, kind, proc, stats: {}, history: [], killed: false, ready: undefined as never, exited: undefined as never }
    let buffer = ''
    let markReady: () => void
    let failReady: (e: Error) => void
    child.ready = new Promise<void>((res, rej) => ((markReady = res), (failReady = rej)))
    child.ready.catch(() => {})
    proc.stdout!.on('data', (d: Buffer) => {
      buffer += d.toString()
      let nl: number
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const text = buffer.slice(0, nl)
        buffer = buffer.slice(nl + 1)
        try {
          const msg = JSON.parse(text) as Record<string, unknown>
          if (msg.event === 'ready') markReady()
          if (msg.event === 'stats' || msg.event === 'stopped') {
            child.stats = msg
            child.history.push({ at: Date.now(), ...msg })
          }
          if (msg.event === 'unhandled') process.stderr.write(`[${name}] unhandled rejection: ${String(msg.error)}\n`)
        } catch {
          if (process.env.PGQUEUE_RELIABILITY_VERBOSE) process.stderr.write(`[${name}] ${text}\n`)
        }
      }
    })
    let stderr = ''
    proc.stderr!.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000)
      if (process.env.PGQUEUE_RELIABILITY_VERBOSE) process.stderr.write(`[${name}] ${d}`)
    })
    child.exited = new Promise((res) =>
      proc.on('exit', (code) => {
        failReady(new Error(`${name} exited (${code}) before ready: ${stderr}`))
        res(code)
      }),
    )
    this.children.push(child)
    return child
  }

  alive(kind?: Child['kind']): Child[] {
    return this.children.filter((c) => c.proc.exitCode === null && c.proc.signalCode === null && !c.killed && (!kind || c.kind === kind))
  }

  /** kill -9 of one child. */
  async kill9(child: Child): Promise<void> {
    child.killed = true
    this.kills += 1
    child.proc.kill('SIGKILL')
    await child.exited
  }

  /** SIGTERM to every live child (graceful stop), SIGKILL after `timeoutMs`. */
  async stopAll(timeoutMs = 15_000): Promise<void> {
    const live = this.alive()
    for (const c of live) c.proc.kill('SIGTERM')
    await Promise.race([Promise.all(live.map((c) => c.exited)), sleep(timeoutMs)])
    for (const c of this.children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL')
    await Promise.all(this.children.map((c) => c.exited))
  }

  /** Sum of a numeric stats field over every child, dead ones included (last value seen). */
  total(field: string, kind?: Child['kind']): number {
    return this.children.filter((c) => !kind || c.kind === kind).reduce((n, c) => n + Number(c.stats[field] ?? 0), 0)
  }
}

/** What every pushed job is expected to end as. */
export type Expected = 'completed' | 'failed'

/** Jobs the producer acknowledged, with the end each must reach. */
export class Ledger {
  readonly expected = new Map<string, Expected>()
  pushErrors = 0
  lastPushError = ''

  /**
   * Pushes `n` jobs spread over `tenants`, `failEvery`-th one designed to fail (maxAttempts `failAttempts`).
   * A push that errors is counted and not retried (it may or may not have committed: 'ambiguous'); pushing
   * goes on until `n` jobs were acknowledged.
   */
  async push(clients: TenantQueues[], n: number, opts: { chunk?: number; failEvery?: number; failAttempts?: number; queue?: string } = {}): Promise<void> {
    const chunk = opts.chunk ?? 100
    let made = 0
    const target = this.expected.size + n
    while (this.expected.size < target) {
      const client = clients[Math.floor(made / chunk) % clients.length]!
      const size = Math.min(chunk, target - this.expected.size)
      const items = Array.from({ length: size }, (_, i) => {
        const fail = opts.failEvery !== undefined && (made + i) % opts.failEvery === 0
        return fail
          ? { queue: opts.queue ?? 'work', type: 'fail', target: { fail: true }, retryPolicy: { type: 'constant' as const, delayMs: 50, maxAttempts: opts.failAttempts ?? 2 } }
          : { queue: opts.queue ?? 'work', type: 'ok', target: { n: made + i }, retryPolicy: { type: 'constant' as const, delayMs: 50, maxAttempts: 25 } }
      })
      try {
        const pushed = await client.pushMany(items)
        pushed.forEach((r, i) => this.expected.set(r.id, items[i]!.type === 'fail' ? 'failed' : 'completed'))
      } catch (err) {
        this.pushErrors += 1
        this.lastPushError = (err as Error).message
        await sleep(100)
      }
      made += size
    }
  }
}

export interface Verdict {
  acknowledged: number
  inHistory: number
  lost: number
  duplicates: number
  wrongOutcome: number
  stillLive: number
  unacknowledgedFound: number
  attempts: number
  redeliveries: number
  byState: Record<string, number>
}

/** Counts: every acknowledged job in history exactly once with its expected outcome, none left live. */
export async function verify(admin: pg.Pool, schema: string, ledger: Ledger, tenants: string[]): Promise<Verdict> {
  const s = `"${schema}"`
  const hist = await admin.query<{ id: string; state: string; n: number; attempt: number; max_attempts: number }>(
    `select id::text, min(state) as state, count(*)::int as n, max(attempt)::int as attempt, max(max_attempts)::int as max_attempts
       from ${s}.job_history where tenant_id = any($1) and schedule_id is null group by tenant_id, id`,
    [tenants],
  )
  const live = await admin.query<{ n: number }>(`select count(*)::int as n from ${s}.jobs where tenant_id = any($1) and schedule_id is null`, [tenants])
  const byId = new Map(hist.rows.map((r) => [r.id, r]))
  const v: Verdict = { acknowledged: ledger.expected.size, inHistory: 0, lost: 0, duplicates: 0, wrongOutcome: 0, stillLive: live.rows[0]!.n, unacknowledgedFound: 0, attempts: 0, redeliveries: 0, byState: {} }
  for (const [id, want] of ledger.expected) {
    const r = byId.get(id)
    if (!r) {
      v.lost += 1
      continue
    }
    v.inHistory += 1
    if (r.n > 1) v.duplicates += r.n - 1
    v.byState[r.state] = (v.byState[r.state] ?? 0) + 1
    if (r.state !== want || (want === 'failed' && r.attempt < r.max_attempts)) v.wrongOutcome += 1
    v.attempts += r.attempt
    // Runs beyond the one needed: a completed job needs 1, a failing one needs max_attempts.
    v.redeliveries += r.attempt - (want === 'completed' ? 1 : r.max_attempts)
  }
  for (const r of hist.rows) if (!ledger.expected.has(r.id)) v.unacknowledgedFound += 1
  // A job may not be both live and finished.
  const both = await admin.query<{ n: number }>(
    `select count(*)::int as n from ${s}.jobs j join ${s}.job_history h on h.tenant_id = j.tenant_id and h.id = j.id where j.tenant_id = any($1)`,
    [tenants],
  )
  v.duplicates += both.rows[0]!.n
  return v
}

/** Live jobs of `tenants` (all states). */
export async function liveCount(admin: pg.Pool, schema: string, tenants: string[]): Promise<number> {
  const { rows } = await admin.query<{ n: number }>(`select count(*)::int as n from "${schema}".jobs where tenant_id = any($1)`, [tenants])
  return rows[0]!.n
}

/** Waits until no live job of `tenants` is left, or throws after `timeoutMs`. */
export async function drain(admin: pg.Pool, schema: string, tenants: string[], timeoutMs: number, onTick?: () => void): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    let n = -1
    try {
      n = await liveCount(admin, schema, tenants)
    } catch {
      // the database may be restarting
    }
    if (n === 0) return
    if (Date.now() > deadline) {
      const { rows } = await admin.query(
        `select state, queue, lease_owner, (lease_expires_at < now()) as lease_expired, (run_at <= now()) as due, cancel_requested,
                min(attempt) as min_attempt, max(attempt) as max_attempt, count(*)::int as n, min(updated_at) as oldest_update
           from "${schema}".jobs where tenant_id = any($1) group by 1, 2, 3, 4, 5, 6 order by n desc limit 20`,
        [tenants],
      )
      throw new Error(`still ${n} live jobs after ${timeoutMs} ms: ${JSON.stringify(rows)}`)
    }
    onTick?.()
    await sleep(250)
  }
}

export { uuidv7 }
