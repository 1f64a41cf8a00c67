#!/usr/bin/env node
// Sets up a fresh clone with nothing but Node and npm, then runs one task:
//   node scripts/bootstrap.mjs demo|test|bench [args...]
// It installs the pinned pnpm when missing (globally, or through npx when that is not allowed),
// installs the workspace from the lockfile when needed, and hands over to pnpm.
import { spawnSync } from 'node:child_process'
import { existsSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const PNPM_VERSION = '12.4.2'
const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const [task, ...args] = process.argv.slice(2)

function run(cmd, cmdArgs, options = {}) {
  const r = spawnSync(cmd, cmdArgs, { cwd: root, stdio: 'inherit', shell: false, ...options })
  if (r.error) throw r.error
  return r.status ?? 1
}

function capture(cmd, cmdArgs) {
  const r = spawnSync(cmd, cmdArgs, { cwd: root, encoding: 'utf8' })
  return r.status === 0 ? r.stdout.trim() : undefined
}

function pnpm() {
  if (capture('pnpm', ['--version']) === PNPM_VERSION) return ['pnpm']
  process.stderr.write(`installing pnpm@${PNPM_VERSION}...\n`)
  if (run('npm', ['install', '-g', `pnpm@${PNPM_VERSION}`]) === 0 && capture('pnpm', ['--version']) === PNPM_VERSION) return ['pnpm']
  return ['npx', '--yes', `pnpm@${PNPM_VERSION}`]
}

function needsInstall() {
  const marker = join(root, 'node_modules', '.modules.yaml')
  if (!existsSync(marker)) return true
  return statSync(join(root, 'pnpm-lock.yaml')).mtimeMs > statSync(marker).mtimeMs
}

const tasks = {
  demo: ['--filter', '@pgqueue/demo', 'start', ...args],
  test: ['exec', 'vitest', 'run', ...args],
  bench: ['--filter', '@pgqueue/bench', 'bench', ...args],
}
if (!tasks[task]) {
  process.stderr.write(`usage: node scripts/bootstrap.mjs ${Object.keys(tasks).join('|')} [args...]\n`)
  process.exit(2)
}

const [bin, ...pre] = pnpm()
if (needsInstall()) {
  const status = run(bin, [...pre, 'install', '--frozen-lockfile'])
  if (status !== 0) process.exit(status)
}
process.exit(run(bin, [...pre, ...tasks[task]]))
