import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { resolve } from 'node:path'
import pg from 'pg'
import { afterAll, expect, it } from 'vitest'

const demoDir = resolve(import.meta.dirname, '..')
const url = process.env.PGQUEUE_TEST_RESOLVED_URL ?? process.env.PGQUEUE_TEST_DATABASE_URL
// Its own schema and tenant names, so it can share the test database with other files.
const tag = randomBytes(4).toString('hex')
const schema = `demo_${tag}`

afterAll(async () => {
  if (!url) return
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  for (const t of [tag, `${tag}k`]) {
    await client.query(`drop schema if exists "demo_${t}" cascade`)
    for (const login of ['pgqueue_admin', 'pgqueue_worker_login', 'pgqueue_app']) {
      await client.query(`drop owned by "${login}_${t}"`).catch(() => {})
      await client.query(`drop role if exists "${login}_${t}"`).catch(() => {})
    }
  }
  await client.end()
})

/** Runs the demo in a child process against the test server; resolves with its exit code and output. */
function runDemo(args: string[], onDashboard?: (url: string) => void): Promise<{ code: number | null; output: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=@pgqueue/source', 'src/main.ts', ...args], {
      cwd: demoDir,
      env: { ...process.env, DATABASE_URL: url, CI: 'true' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let output = ''
    let announced = false
    child.stdout.on('data', (d) => {
      output += d
      const m = /web dashboard: (http:\S+)/.exec(output)
      if (m && !announced) {
        announced = true
        onDashboard?.(m[1]!)
      }
    })
    child.stderr.on('data', (d) => (output += d))
    const timer = setTimeout(() => child.kill('SIGINT'), 80_000)
    child.on('exit', (code) => {
      clearTimeout(timer)
      done({ code, output })
    })
  })
}

it('the short demo runs the whole story and every pushed job reaches history', async () => {
  expect(url, 'run through vitest: its global setup resolves the database').toBeTruthy()
  let page: Promise<{ status: number; body: string }> | undefined
  const { code, output } = await runDemo(['--short', '--no-live', '--schema', schema, '--login-suffix', tag], (address) => {
    page = fetch(address).then(async (r) => ({ status: r.status, body: await r.text() }))
  })
  // The demo serves the web dashboard on a free port while it runs, and says where.
  expect(page, output.slice(-3000)).toBeDefined()
  const served = await page!
  expect(served.status).toBe(200)
  expect(served.body).toContain('<h1>Overview</h1>')

  expect(output).toMatch(/OK: all \d+ pushed jobs and \d+ scheduled runs reached history/)
  expect(output).toMatch(/Fair: the backlog delays only the tenant that made it/)
  expect(code, output.slice(-3000)).toBe(0)
  expect(output).toMatch(/dropped the roles this run created/)

  // Nothing of the run is left on the shared server: its logins are gone, and its schema with them.
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const left = await client.query(`select rolname from pg_roles where rolname like $1`, [`%_${tag}`])
    expect(left.rows).toEqual([])
    const schemas = await client.query(`select 1 from pg_namespace where nspname = $1`, [schema])
    expect(schemas.rowCount).toBe(0)
  } finally {
    await client.end()
  }
}, 100_000)

it('with --keep, leaves the run on the server to look at', async () => {
  const keepTag = `${tag}k`
  const keepSchema = `demo_${keepTag}`
  const { code, output } = await runDemo(['--short', '--no-live', '--seconds', '2', '--keep', '--schema', keepSchema, '--login-suffix', keepTag])

  expect(code, output.slice(-3000)).toBe(0)
  // Check from outside as well: nothing is left live, and history holds failed jobs (retries exhausted)
  // and completed ones for every tenant.
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const live = await client.query(`select count(*)::int as n from "${keepSchema}".jobs`)
    expect(live.rows[0].n).toBe(0)
    const byTenant = await client.query(`select tenant_id, count(*) filter (where state = 'completed')::int as completed from "${keepSchema}".job_history group by 1`)
    expect(byTenant.rows.map((r) => r.tenant_id).sort()).toEqual(['acme', 'globex', 'initech', 'noisy'])
    for (const r of byTenant.rows) expect(r.completed).toBeGreaterThan(0)
  } finally {
    await client.end()
  }
}, 100_000)
