// Quick bulk-push check (not the peer benchmark): 50 pushMany calls of 1,000 jobs, jobs/s and the client's
// CPU per job. node --import tsx --conditions=@pgqueue/source apps/bench/scripts/push-profile.ts [adminUrl]
// MARK=1 prints the timed window in process.hrtime microseconds, to cut a --cpu-prof to it.
import pg from 'pg'
import { migrate } from '@pgqueue/core'
import { Queues } from '@pgqueue/producer'
const url = process.argv[2] ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const schema = `pgq_pp_${process.pid}`
const { tenantSecret } = await migrate(url, { schema })
const q = Queues.create(url, { schema, tenantSecret })
const items = Array.from({ length: 1000 }, (_, i) => ({ queue: 'bench', type: 'noop', target: { s: i, t: 't1' } }))
for (let i = 0; i < 5; i++) await q.withTenant(`w${i}`).pushMany(items)
const cpu0 = process.cpuUsage(); const t0 = performance.now()
if (process.env.MARK) console.log(`mark start ${process.hrtime.bigint() / 1000n}`)
for (let i = 0; i < Number(process.env.CHUNKS ?? 50); i++) await q.withTenant(`t${i % 100}`).pushMany(items)
if (process.env.MARK) console.log(`mark end ${process.hrtime.bigint() / 1000n}`)
const ms = performance.now() - t0; const cpu = process.cpuUsage(cpu0)
const n = 1000 * Number(process.env.CHUNKS ?? 50)
console.log(`${n} jobs in chunks of 1,000: ${(n / ms * 1000).toFixed(0)} jobs/s, client ${((cpu.user + cpu.system) / n).toFixed(1)} us/job`)
await q.close()
const admin = new pg.Client(url); await admin.connect(); await admin.query(`drop schema "${schema}" cascade`); await admin.end()
