#!/usr/bin/env node
// Checks the published shape of every public package: publint (package.json fields, exports, files)
// and are-the-types-wrong (the types a TypeScript user resolves match the JavaScript Node loads).
// The packages are ESM only, so attw checks the node16 (ESM) and bundler resolutions.
//   node scripts/check-packages.mjs   (after pnpm build)
import { execFileSync } from 'node:child_process'
import { readFileSync, readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const bin = (name) => join(root, 'node_modules', '.bin', name)
const packages = readdirSync(join(root, 'packages'))
  .map((dir) => join(root, 'packages', dir))
  .filter((dir) => !JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).private)
  .filter((dir) => !dir.endsWith('/testing'))
let failed = 0
for (const dir of packages) {
  const name = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).name
  for (const [tool, args] of [
    ['publint', ['run', dir, '--strict']],
    ['attw', ['--pack', dir, '--profile', 'esm-only', '--format', 'table-flipped']],
  ]) {
    try {
      execFileSync(bin(tool), args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' })
      console.log(`ok   ${name} (${tool})`)
    } catch (err) {
      failed += 1
      console.log(`FAIL ${name} (${tool})\n${err.stdout ?? ''}${err.stderr ?? ''}`)
    }
  }
}
process.exit(failed > 0 ? 1 : 0)
