/**
 * Quick push rates against a real PostgreSQL, as a queue_user login in a throwaway schema:
 *   PGQUEUE_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npx tsx packages/producer/scripts/push-rate.ts
 * Not a benchmark (that is apps/bench): a sanity figure for the report.
 */
import { migrate } from '@pgqueue/core'
import { createIsolatedDatabase } from '@pgqueue/testing'
import { Queues } from '../src/index.js'

const t = await createIsolatedDatabase('push_rate')
try {
  await migrate(t.adminUrl, t.schemaOptions)
  const queues = Queues.create(t.userUrl, { schema: t.schema, poolSize: 4 })
  const q = queues.withTenant('bench')
  const payload = Buffer.from('x'.repeat(100))

  const singles = Number(process.env.SINGLES ?? 5000)
  let start = performance.now()
  for (let i = 0; i < singles; i++) await q.push({ queue: 'single', type: 't', payload, target: { i } })
  let s = (performance.now() - start) / 1000
  console.log(`single push, ${singles} sequential: ${Math.round(singles / s)} jobs/s (${((s / singles) * 1000).toFixed(2)} ms each)`)

  const conc = 8
  start = performance.now()
  await Promise.all(Array.from({ length: conc }, async (_, w) => {
    for (let i = 0; i < singles / conc; i++) await q.push({ queue: 'single-conc', type: 't', payload, target: { w, i } })
  }))
  s = (performance.now() - start) / 1000
  console.log(`single push, ${singles} over ${conc} concurrent callers (pool 4): ${Math.round(singles / s)} jobs/s`)

  for (const n of [10_000, 50_000]) {
    const items = Array.from({ length: n }, (_, i) => ({ queue: `bulk-${n}`, type: 't', payload, target: { i } }))
    start = performance.now()
    await q.pushMany(items)
    s = (performance.now() - start) / 1000
    console.log(`pushMany ${n}: ${Math.round(n / s)} jobs/s (${(s * 1000).toFixed(0)} ms)`)
  }
  await queues.close()
} finally {
  await t.cleanup()
}
