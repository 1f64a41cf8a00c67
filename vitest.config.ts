import { readdirSync, existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { defineConfig } from 'vitest/config'

const here = import.meta.dirname

// One project per package or app that has a test/ folder; one PostgreSQL for the whole run.
const projects = ['packages', 'apps', 'tests']
  .filter((dir) => existsSync(dir))
  .flatMap((dir) => readdirSync(dir).map((name) => `${dir}/${name}`))
  .filter((path) => existsSync(`${path}/test`))
  .map((path) => ({
    extends: true as const,
    test: { name: path.split('/').pop()!, root: resolve(here, path), include: ['test/**/*.test.ts'] },
  }))

export default defineConfig({
  // Workspace packages resolve to their TypeScript sources, so tests need no build.
  ssr: { resolve: { conditions: ['@pgqueue/source', 'module', 'node', 'development|production'] } },
  test: {
    globalSetup: [resolve(here, 'packages/testing/src/global-setup.ts')],
    projects,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: process.env.PGQUEUE_TEST_WORKERS ? Number(process.env.PGQUEUE_TEST_WORKERS) : 3,
  },
})
