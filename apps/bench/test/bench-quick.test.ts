import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { plan, runBench } from '../src/bench.js'
import type { Report } from '../src/report.js'

// The bench's quick mode end to end, so it never rots: every case, every library (pgqueue on Node 24;
// the Node 20 row runs the same code as this test process), small counts, one repetition. Numbers are
// not asserted: only that every pair ran and reported one.
const LIBS = ['pgqueue', 'pg-boss', 'graphile-worker', 'floor']

describe('bench --quick', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgqueue-bench-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('runs every case for every library and writes the report', { timeout: 240_000 }, async () => {
    const url = process.env.PGQUEUE_TEST_RESOLVED_URL ?? process.env.PGQUEUE_TEST_DATABASE_URL
    if (!url) throw new Error('no test database URL (run through vitest, whose global setup provides one)')
    const out = join(dir, 'quick.json')
    const lines: string[] = []
    const report = await runBench({ mode: 'quick', reps: 1, databaseUrl: url, databaseSource: 'test database', only: LIBS, out, log: (l) => lines.push(l) })

    const expected = plan('quick', LIBS)
    expect(report.cases.map((c) => c.id)).toEqual(expected.map((p) => p.def.id))
    const failures: string[] = []
    for (const c of report.cases) {
      for (const row of c.rows) {
        if (!row.summary || row.errors.length) failures.push(`${c.id} ${row.lib}: ${row.errors.join('; ') || 'no value'}`)
        else if (!(row.summary.median > 0)) failures.push(`${c.id} ${row.lib}: value ${row.summary.median}`)
      }
    }
    expect(failures, lines.join('\n')).toEqual([])
    for (const id of ['single-push', 'bulk-chunks', 'bulk-one', 'processing', 'latency', 'fairness-20k']) {
      expect(report.cases.find((c) => c.id === id)?.ratioToBestPeer, id).toBeGreaterThan(0)
    }
    expect(report.goals.length).toBeGreaterThan(0)
    const saved = JSON.parse(readFileSync(out, 'utf8')) as Report
    expect(saved.environment.node24).toMatch(/^v2[4-9]\./)
    expect(readFileSync(out.replace(/\.json$/, '.md'), 'utf8')).toContain('pgqueue / best peer')
  })
})
