// Quick local throughput and pickup-latency check (not the peer benchmark, which lives in apps/bench).
// node --import tsx --conditions=@pgqueue/source apps/bench/scripts/worker-throughput.ts [adminUrl] [jobs] [tenants]
// Env: CONCURRENCY, BATCH, COMPLETE (worker options); EXTRA_SQL runs after migrating, $S = the schema
// (e.g. EXTRA_SQL='drop index $S.some_idx' to measure what an index costs).
// MARK=1 prints the processing window in process.hrtime microseconds, to cut a --cpu-prof to it.
import { readFileSync } from 'node:fs'
import pg from 'pg'
import { migrate, uuidv7 } from '@pgqueue/core'
import { Worker } from '@pgqueue/worker'
import { Scheduler } from '@pgqueue/scheduler'

const adminUrl = process.argv[2] ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const total = Number(process.argv[3] ?? 50_000)
const tenants = Number(process.argv[4] ?? 100)
const concurrency = Number(process.env.CONCURRENCY ?? 10)
const batchSize = process.env.BATCH ? Number(process.env.BATCH) : undefined
const schema = `pgq_bench_${process.pid}`
const admin = new pg.Pool({ connectionString: adminUrl, max: 2 })

async function push(tenant: string, n: number): Promise<void> {
  const ids = Array.from({ length: n }, () => uuidv7())
  const fill = <T>(v: T) => Array(n).fill(v) as T[]
  await admin.query(`select 1 from "${schema}".push_jobs($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
    [tenant, ids, fill('bench'), fill('noop'), fill(null), fill(null), fill(null), fill(null), fill(0), fill(null), fill(5), fill(null), fill(null), fill(null)])
}

try {
  await migrate(adminUrl, { schema, workerRole: 'queue_worker', userRole: 'queue_user' })
  if (process.env.EXTRA_SQL) await admin.query(process.env.EXTRA_SQL.replaceAll('$S', `"${schema}"`))
  const per = Math.ceil(total / tenants)
  for (let t = 0; t < tenants; t++) await push(`tenant-${t}`, per)
  await admin.query(`analyze "${schema}".jobs`)
  const n = per * tenants
  const scheduler = Scheduler.create(adminUrl, { schema })
  let done = 0
  let resolveDone!: () => void
  const finished = new Promise<void>((r) => (resolveDone = r))
  const completeBatchSize = process.env.COMPLETE ? Number(process.env.COMPLETE) : undefined
  const worker = Worker.create(adminUrl, { schema, queues: ['bench'], concurrency, ...(batchSize ? { batchSize } : {}), ...(completeBatchSize ? { completeBatchSize } : {}) }, async () => {})
  worker.on('job:completed', () => {
    if (++done === n) resolveDone()
  })
  await scheduler.start()
  const startedAt = new Date()
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  if (process.env.MARK) console.log(`mark start ${process.hrtime.bigint() / 1000n}`)
  await worker.start()
  await finished
  if (process.env.MARK) console.log(`mark end ${process.hrtime.bigint() / 1000n}`)
  const secs = (performance.now() - t0) / 1000
  const cpu = process.cpuUsage(cpu0)
  console.log(`throughput: ${n} no-op jobs over ${tenants} tenants, concurrency ${concurrency}: ${(n / secs).toFixed(0)} jobs/s (${secs.toFixed(2)} s)`)
  // CPU per job, which a busy machine distorts far less than wall time: this process, plus the
  // server processes of the worker's and scheduler's connections (Linux /proc, same host only).
  const { rows: backends } = await admin.query<{ pid: number }>(
    `select pid from pg_stat_activity where application_name in ('pgqueue-worker', 'pgqueue-scheduler') and backend_start >= $1`, [new Date(startedAt.getTime() - 5_000)])
  let serverTicks = 0
  for (const { pid } of backends) {
    try {
      const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
      serverTicks += Number(f[11]) + Number(f[12])
    } catch {}
  }
  const clientUs = (cpu.user + cpu.system) / n
  const serverUs = (serverTicks * 10_000) / n
  console.log(`cpu per job: client ${clientUs.toFixed(1)} us, server ${serverUs.toFixed(1)} us (${backends.length} connections), total ${(clientUs + serverUs).toFixed(1)} us`)
  // Pickup latency: single jobs pushed to the idle worker.
  const lat: number[] = []
  const w2 = Worker.create(adminUrl, { schema, queues: ['latency'], concurrency: 1 }, async (job) => void lat.push(Date.now() - Number(job.payloadType)))
  await w2.start()
  await new Promise((r) => setTimeout(r, 300))
  for (let i = 0; i < 50; i++) {
    await admin.query(`select 1 from "${schema}".push_jobs($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
      ['t', [uuidv7()], ['latency'], ['x'], [null], [null], [String(Date.now())], [null], [0], [null], [1], [null], [null], [null]])
    await new Promise((r) => setTimeout(r, 30))
  }
  await new Promise((r) => setTimeout(r, 300))
  lat.sort((a, b) => a - b)
  const pct = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]
  console.log(`pickup latency ms (n=${lat.length}): p50 ${pct(0.5)} p95 ${pct(0.95)} p99 ${pct(0.99)}`)
  await w2.stop()
  await worker.stop()
  await scheduler.stop()
} finally {
  await admin.query(`drop schema if exists "${schema}" cascade`)
  await admin.end()
}
