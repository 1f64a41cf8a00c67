import pg from 'pg'
import { connect, silentLogger, warningsLogger, type Connection, type Logger } from '@pgqueue/core/internal'
import { requireUrl, schemaOptions, type Settings } from './config.js'
import type { Output } from './output.js'

/** What every command gets: its settings, its output, and one lazily opened pool for all its work. */
export class CommandContext {
  private conn: Connection | undefined

  constructor(
    readonly settings: Settings,
    readonly out: Output,
  ) {}

  /** The database URL (usage error when none was given). */
  get url(): string {
    return requireUrl(this.settings)
  }

  /** Schema and role names for the packages (their defaults when not given). */
  get names(): { schema?: string; workerRole?: string; userRole?: string } {
    return schemaOptions(this.settings)
  }

  get schema(): string {
    return this.settings.schema ?? 'pgqueue'
  }

  /** Component warnings on stderr with --verbose, else none (a CLI run is short; its result says it all). */
  get logger(): Logger {
    return this.settings.verbose ? warningsLogger : silentLogger
  }

  /** One pool (two connections) shared by the command's clients; fails fast when the server is away. */
  get connection(): Connection {
    if (this.conn === undefined) {
      const pool = new pg.Pool({ connectionString: this.url, max: 2, application_name: 'pgqueue-cli', connectionTimeoutMillis: 10_000 })
      pool.on('error', () => {})
      this.conn = connect(pool)
    }
    return this.conn
  }

  get pool(): pg.Pool {
    return this.connection.pool
  }

  /** Ends the pool. */
  async close(): Promise<void> {
    const conn = this.conn
    this.conn = undefined
    if (conn) {
      await conn.close()
      await conn.pool.end().catch(() => {})
    }
  }
}
