// Runs in an empty project where the packed pgqueue packages were installed with npm: the README's
// quick start, end to end, on a throwaway schema and logins.
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import pgqueue, { Coordinator } from 'pgqueue'
import { Worker } from 'pgqueue/queues'
import { Queues } from '@pgqueue/producer'
import { createDashboard } from '@pgqueue/dashboard'

const adminUrl = process.argv[2]
const runtime = globalThis.Bun ? `bun ${globalThis.Bun.version}` : `node ${process.version}`
const base = `pgq_pack_${randomBytes(4).toString('hex')}`
const opts = { schema: base, workerRole: `${base}_w`, userRole: `${base}_u` }
const admin = new pg.Pool({ connectionString: adminUrl, max: 1 })
const login = (name) => Object.assign(new URL(adminUrl), { username: name, password: 'smoke' }).toString()

try {
  const { tenantSecret } = await pgqueue.initialize(adminUrl, opts)
  await admin.query(`create role "${base}_wl" login password 'smoke' in role "${opts.workerRole}"`)
  await admin.query(`create role "${base}_ul" login password 'smoke' in role "${opts.userRole}"`)
  const client = await pgqueue.quickstart(login(`${base}_ul`), { schema: base, tenantSecret })
  const coordinator = Coordinator.create({ worker: login(`${base}_wl`) }, { schema: base })
  const worker = Worker.create(login(`${base}_wl`), { schema: base, pollMs: 50 }, async (job) => ({ result: { hello: job.tenantId } }))
  await coordinator.start()
  await worker.start()
  const acme = client.queues.withTenant('acme')
  const job = await acme.push({ queue: 'smoke', type: 'hello', payload: 'hi', delay: 100 })
  let entry = null
  for (let i = 0; i < 200 && !entry; i++) {
    const got = await acme.get(job.id)
    if (got?.kind === 'history') entry = got
    else await new Promise((r) => setTimeout(r, 50))
  }
  await worker.stop()
  await coordinator.stop()
  await client.close()
  if (!entry || entry.state !== 'completed') throw new Error(`job not completed: ${JSON.stringify(entry)}`)
  if (typeof Queues.create !== 'function') throw new Error('@pgqueue/producer has no Queues')
  // The dashboard's Fetch handler on this runtime's own Request and Response, in tenant mode.
  const dashboard = createDashboard({ mode: 'tenant', connection: login(`${base}_ul`), tenantSecret, schema: base, resolveTenant: () => 'acme' })
  const page = await dashboard.fetch(new Request(`http://smoke.test/jobs/${job.id}`))
  const html = await page.text()
  await dashboard.close()
  if (page.status !== 200 || !html.includes(job.id)) throw new Error(`dashboard job page: ${page.status}`)
  console.log(`pack smoke on ${runtime}: pushed, delayed, worked and recorded a job from the installed tarballs, and showed it on the dashboard`)
} finally {
  await admin.query(`drop schema if exists "${base}" cascade`)
  for (const role of [`${base}_wl`, `${base}_ul`, opts.workerRole, opts.userRole]) {
    await admin.query(`drop owned by "${role}"`).catch(() => {})
    await admin.query(`drop role if exists "${role}"`).catch(() => {})
  }
  await admin.end()
}
