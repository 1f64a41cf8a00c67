import { spawn, type ChildProcess } from 'node:child_process'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { sleep } from './harness.js'

/** Where Debian's pgbouncer package installs the binary. */
export const PGBOUNCER_BIN = '/usr/sbin/pgbouncer'

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port
      srv.close(() => resolve(port))
    })
    srv.on('error', reject)
  })
}

/** A PgBouncer (Debian package) in transaction pooling mode in front of `upstreamUrl`, started by the test. */
export class PgBouncer {
  private proc: ChildProcess | undefined
  private dir = ''
  port = 0
  log = ''

  constructor(private readonly upstreamUrl: string, private readonly logins: Array<{ user: string; password: string }>) {}

  /** `url` with host and port replaced by PgBouncer's. */
  via(url: string): string {
    const u = new URL(url)
    u.hostname = '127.0.0.1'
    u.port = String(this.port)
    return u.toString()
  }

  async start(): Promise<void> {
    const up = new URL(this.upstreamUrl)
    this.port = await freePort()
    this.dir = mkdtempSync(join(tmpdir(), 'pgq-bouncer-'))
    chmodSync(this.dir, 0o777)
    const userlist = this.logins.map((l) => `"${l.user}" "${l.password}"`).join('\n')
    writeFileSync(join(this.dir, 'userlist.txt'), `${userlist}\n`, { mode: 0o644 })
    writeFileSync(
      join(this.dir, 'pgbouncer.ini'),
      [
        '[databases]',
        `* = host=${up.hostname} port=${up.port || 5432}`,
        '[pgbouncer]',
        'listen_addr = 127.0.0.1',
        `listen_port = ${this.port}`,
        "unix_socket_dir = ''",
        'auth_type = trust',
        `auth_file = ${join(this.dir, 'userlist.txt')}`,
        'pool_mode = transaction',
        'max_client_conn = 500',
        'default_pool_size = 12',
        'server_reset_query =',
        'ignore_startup_parameters = extra_float_digits,options',
        `pidfile = ${join(this.dir, 'pgbouncer.pid')}`,
        `logfile = ${join(this.dir, 'pgbouncer.log')}`,
        '',
      ].join('\n'),
      { mode: 0o644 },
    )
    const args = [join(this.dir, 'pgbouncer.ini')]
    // PgBouncer refuses to run as root: drop to the postgres OS user when we are root.
    if (process.getuid?.() === 0) args.unshift('-u', 'postgres')
    this.proc = spawn(PGBOUNCER_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    this.proc.stdout!.on('data', (d: Buffer) => (this.log = (this.log + d).slice(-4000)))
    this.proc.stderr!.on('data', (d: Buffer) => (this.log = (this.log + d).slice(-4000)))
    const login = this.logins[0]!
    const probe = new URL(this.upstreamUrl)
    probe.username = login.user
    probe.password = login.password
    const deadline = Date.now() + 10_000
    for (;;) {
      const c = new pg.Client({ connectionString: this.via(probe.toString()) })
      c.on('error', () => {})
      try {
        await c.connect()
        await c.query('select 1')
        await c.end()
        return
      } catch (err) {
        await c.end().catch(() => {})
        if (Date.now() > deadline || this.proc.exitCode !== null) throw new Error(`pgbouncer did not start: ${(err as Error).message}\n${this.log}`)
        await sleep(200)
      }
    }
  }

  async stop(): Promise<void> {
    if (this.proc && this.proc.exitCode === null) {
      const exited = new Promise((r) => this.proc!.on('exit', r))
      this.proc.kill('SIGINT')
      await Promise.race([exited, sleep(5000)])
      if (this.proc.exitCode === null) this.proc.kill('SIGKILL')
    }
    if (this.dir) rmSync(this.dir, { recursive: true, force: true })
  }
}
