// Statements a running Scheduler sends while an application pushes single jobs (each push of due jobs
// notifies). node --import tsx --conditions=@pgqueue/source apps/bench/scripts/scheduler-statements.ts [adminUrl]
import pg from 'pg'
import { migrate } from '@pgqueue/core'
import { Scheduler } from '@pgqueue/scheduler'
import { Queues } from '@pgqueue/producer'
const counts: Record<string, number> = {}
const orig = (pg.Client.prototype as any).query
;(pg.Client.prototype as any).query = function (...a: any[]) {
  if ((this as any).connectionParameters?.application_name === 'pgqueue-scheduler') {
    const t = typeof a[0] === 'string' ? a[0] : a[0]?.text ?? ''
    const k = t.trim().slice(0, 24).replace(/\s+/g, ' ')
    counts[k] = (counts[k] ?? 0) + 1
  }
  return orig.apply(this, a)
}
const url = process.argv[2] ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const schema = `pgq_sr_${process.pid}`
const { tenantSecret } = await migrate(url, { schema })
const s = Scheduler.create(url, { schema })
await s.start()
const q = Queues.create(url, { schema, tenantSecret })
const tq = q.withTenant('t')
await new Promise((r) => setTimeout(r, 300))
for (const k of Object.keys(counts)) delete counts[k]
const t0 = performance.now()
for (let i = 0; i < 2000; i++) await tq.push({ queue: 'a', type: 'x' })
const secs = (performance.now() - t0) / 1000
console.log(`2000 pushes in ${secs.toFixed(1)} s; scheduler statements:`, counts)
await s.stop(); await q.close()
const admin = new pg.Client(url); await admin.connect(); await admin.query(`drop schema "${schema}" cascade`); await admin.end()
