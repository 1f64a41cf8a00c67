import { spawn, spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { afterAll, expect, it } from 'vitest'

// A new user who is root clones into a private folder (mode 700, like root's home) and runs the
// README's `npm run demo` with no database configured. The embedded PostgreSQL then runs as OS user
// postgres, which cannot enter that folder; the demo must work anyway. Only root can check this.
const root = resolve(import.meta.dirname, '..', '..', '..')
const isRoot = process.getuid?.() === 0
const hasGit = spawnSync('git', ['--version']).status === 0
const privateDir = isRoot && hasGit ? mkdtempSync(join(tmpdir(), 'pgqueue-private-')) : undefined

afterAll(() => {
  if (privateDir) rmSync(privateDir, { recursive: true, force: true })
})

/** Copies the working tree's files (tracked and new, as git lists them) into `to`. */
function copyCheckout(to: string): void {
  const listed = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: root, encoding: 'utf8' })
  if (listed.status !== 0) throw new Error(`git ls-files failed: ${listed.stderr}`)
  for (const file of listed.stdout.split('\0').filter(Boolean)) {
    const from = join(root, file)
    if (!existsSync(from)) continue
    mkdirSync(dirname(join(to, file)), { recursive: true })
    copyFileSync(from, join(to, file))
  }
}

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((done) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (d) => (output += d))
    child.stderr.on('data', (d) => (output += d))
    const timer = setTimeout(() => child.kill('SIGINT'), timeoutMs)
    child.on('exit', (code) => {
      clearTimeout(timer)
      done({ code, output })
    })
  })
}

it.skipIf(!privateDir)('npm run demo works as root from a folder only root may enter', async () => {
  expect(statSync(privateDir!).mode & 0o777).toBe(0o700)
  const checkout = join(privateDir!, 'pgqueue')
  copyCheckout(checkout)
  // No database given: the demo must start its own embedded server.
  const env: NodeJS.ProcessEnv = { ...process.env, CI: 'true' }
  for (const name of ['DATABASE_URL', 'PGQUEUE_TEST_DATABASE_URL', 'PGQUEUE_TEST_RESOLVED_URL']) delete env[name]
  // The README's command, which installs the workspace first.
  const demo = await run('npm', ['run', 'demo', '--', '--short', '--no-live'], checkout, env, 360_000)
  expect(demo.output).toMatch(/starting an embedded PostgreSQL/)
  expect(demo.output).toMatch(/OK: all \d+ pushed jobs and \d+ scheduled runs reached history/)
  expect(demo.code, demo.output.slice(-3000)).toBe(0)
}, 420_000)
