#!/usr/bin/env node
// Proves the published shape: packs every public package as pnpm publishes it (workspace:* becomes a
// version), installs the tarballs with plain npm into an empty project outside the workspace, and runs
// a push -> work -> complete smoke there under Node and, when given, Bun.
//   node scripts/pack-smoke/run.mjs <superuser-url> [path-to-bun]
// Needs a built workspace (pnpm build) and the npm registry for the third-party dependencies.
import { execFileSync } from 'node:child_process'
import { copyFileSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const [adminUrl = 'postgres://postgres@127.0.0.1:5432/postgres', bunArg] = process.argv.slice(2)
const bun = bunArg === undefined ? undefined : resolve(bunArg)
const work = mkdtempSync(join(tmpdir(), 'pgqueue-pack-'))
const tarballs = join(work, 'tarballs')
const app = join(work, 'app')
const sh = (cmd, args, cwd) => execFileSync(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' })

try {
  sh('pnpm', ['-r', '--filter', './packages/*', '--filter', '!@pgqueue/testing', 'pack', '--pack-destination', tarballs], root)
  const files = readdirSync(tarballs).filter((f) => f.endsWith('.tgz'))
  console.log(`packed ${files.length}: ${files.join(', ')}`)
  sh('mkdir', ['-p', app])
  // Every pgqueue package from its tarball, the rest from the registry, as a user's install resolves them.
  const deps = Object.fromEntries(files.map((f) => [tarballName(f), `file:${join(tarballs, f)}`]))
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'pack-smoke', private: true, type: 'module', dependencies: deps, overrides: deps }, null, 2))
  sh('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], app)
  copyFileSync(join(root, 'scripts', 'pack-smoke', 'smoke.mjs'), join(app, 'smoke.mjs'))
  process.stdout.write(sh(process.execPath, ['smoke.mjs', adminUrl], app))
  if (bun) process.stdout.write(sh(bun, ['smoke.mjs', adminUrl], app))
  // The CLI through its installed bin (a dry run writes nothing), and the Prometheus collector with its peer.
  const cli = join(app, 'node_modules', '.bin', 'pgqueue')
  const dry = JSON.parse(sh(cli, ['migrate', '--dry-run', '--json', '--url', adminUrl, '--schema', 'pgq_pack_cli_dry'], app))
  if (!(dry.pending.length > 0)) throw new Error('pgqueue migrate --dry-run listed no migrations for an empty schema')
  console.log(`pgqueue ${sh(cli, ['--version'], app).trim()}: migrate --dry-run lists ${dry.pending.length} migrations`)
  const dashboardHelp = sh(join(app, 'node_modules', '.bin', 'pgqueue-dashboard'), ['--help'], app)
  if (!dashboardHelp.includes('pgqueue-dashboard --url')) throw new Error('pgqueue-dashboard --help printed no usage')
  console.log('pgqueue-dashboard: the installed bin prints its usage')
  const scrape = `import { Registry } from 'prom-client'; import { registerPgQueueMetrics } from '@pgqueue/prometheus'
    const r = new Registry(); const m = registerPgQueueMetrics(r, ${JSON.stringify(adminUrl)}, { schema: 'pgq_pack_prom_none' })
    const text = await r.metrics(); await m.close()
    if (!/^pgqueue_collector_errors_total 1$/m.test(text)) throw new Error('unexpected scrape: ' + text)
    console.log('prometheus collector: scraped, a missing schema counted as a collector error')`
  process.stdout.write(sh(process.execPath, ['--input-type=module', '-e', scrape], app))
} finally {
  rmSync(work, { recursive: true, force: true })
}

/** pgqueue-core-0.1.0.tgz -> @pgqueue/core; pgqueue-0.1.0.tgz -> pgqueue. */
function tarballName(file) {
  const base = file.replace(/-\d+\.\d+\.\d+.*\.tgz$/, '')
  return base === 'pgqueue' ? 'pgqueue' : `@pgqueue/${base.replace(/^pgqueue-/, '')}`
}
