import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const here = dirname(fileURLToPath(import.meta.url))

/**
 * Bundles src/bin.ts (and the workspace packages' sources) into one file under test/.bundle, so every
 * command starts in a fraction of a second as a plain `node` child process, the way users run it.
 * pg stays external and resolves from this package's node_modules.
 */
export async function bundleCli(): Promise<{ bin: string; remove(): void }> {
  const dir = join(here, '.bundle', randomBytes(4).toString('hex'))
  mkdirSync(dir, { recursive: true })
  const bin = join(dir, 'bin.mjs')
  await build({
    entryPoints: [join(here, '../src/bin.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    conditions: ['@pgqueue/source'],
    external: ['pg', 'pg-native'],
    outfile: bin,
    // commander is CommonJS: give the bundle a require() for its node: imports.
    banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
    logLevel: 'error',
  })
  return { bin, remove: () => rmSync(dir, { recursive: true, force: true }) }
}

export interface CliRun {
  code: number | null
  stdout: string
  stderr: string
  /** stdout parsed as JSON (for --json runs). */
  json<T = any>(): T
}

/**
 * Runs the CLI as a child process with only the given environment (plus PATH), so the test process's
 * own PGQUEUE_* variables never leak in. `input` is written to its stdin.
 */
export function runCli(bin: string, args: readonly string[], options: { env?: Record<string, string | undefined>; input?: string; cwd?: string; timeoutMs?: number } = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const env: Record<string, string> = { PATH: process.env.PATH ?? '' }
    for (const [k, v] of Object.entries(options.env ?? {})) if (v !== undefined) env[k] = v
    const child = spawn(process.execPath, [bin, ...args], { env, cwd: options.cwd ?? here, stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({
        code,
        stdout,
        stderr,
        json: () => {
          try {
            return JSON.parse(stdout)
          } catch {
            throw new Error(`stdout is not JSON (exit ${code}): ${stdout}\nstderr: ${stderr}`)
          }
        },
      })
    })
    child.stdin.end(options.input ?? '')
  })
}

/** Spawns the CLI and returns the live child (for long-running components). */
export function spawnCli(bin: string, args: readonly string[], env: Record<string, string | undefined>, cwd = here) {
  const e: Record<string, string> = { PATH: process.env.PATH ?? '' }
  for (const [k, v] of Object.entries(env)) if (v !== undefined) e[k] = v
  return spawn(process.execPath, [bin, ...args], { env: e, cwd, stdio: ['ignore', 'pipe', 'pipe'] })
}
