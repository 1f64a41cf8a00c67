/** Command-line options of the demo. */
export interface DemoOptions {
  /** Finish fast (CI): a small burst of jobs, then wait until every job reached history. */
  short: boolean
  /** How long producers keep pushing, in seconds. Default 30 (8 with --short). */
  seconds: number
  /** Tenant names; the first one is the noisy tenant. Default noisy, acme, globex, initech. */
  tenants: string[]
  /** Schema for the demo's installation. Default 'pgqueue'. */
  schema: string
  /** Live table refresh in milliseconds; 0 turns it off (plain log lines instead). */
  refreshMs: number
  /** Appended to the login names (pgqueue_admin_<suffix>...), so runs can share a server. Default none. */
  loginSuffix: string
  /** On DATABASE_URL, keep the roles (and schema) this run created instead of dropping them at exit. */
  keep: boolean
  /** After the story, keep the web dashboard (and the database) up until Ctrl-C. */
  stay: boolean
}

const USAGE = `usage: pnpm --filter @pgqueue/demo start [-- options]
  --short              a quick run for CI (about 15 s after the database is up), exit code 0 only if every job reached history
  --seconds N          push jobs for N seconds (default 30)
  --tenants a,b,c      tenant names, the first is the noisy one (or a number: that many tenants)
  --schema NAME        schema for pgqueue's tables (default pgqueue)
  --no-live            print log lines instead of the live table
  --stay               after the story, keep the web dashboard (printed at start) and the database up until Ctrl-C
  --keep               on DATABASE_URL, keep the roles and schema this run created (dropped at exit by default)
  --login-suffix S     name the logins pgqueue_admin_S, pgqueue_worker_login_S, pgqueue_app_S (several runs on one server)
environment:
  DATABASE_URL         use this PostgreSQL (a superuser or a role with CREATEROLE) instead of an embedded one`

/** Parses argv; exits with the usage on an unknown flag. */
export function parseOptions(argv: string[]): DemoOptions {
  const opts: DemoOptions = { short: false, seconds: NaN, tenants: ['noisy', 'acme', 'globex', 'initech'], schema: 'pgqueue', refreshMs: 500, loginSuffix: '', keep: false, stay: false }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    // pnpm 12 passes the `--` of `pnpm --filter @pgqueue/demo start -- --short` through to the script.
    if (arg === '--') continue
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined]
    const value = () => {
      const v = inline ?? argv[++i]
      if (v === undefined) fail(`${flag} needs a value`)
      return v
    }
    switch (flag) {
      case '--short':
        opts.short = true
        break
      case '--seconds': {
        const n = Number(value())
        if (!Number.isFinite(n) || n <= 0) fail('--seconds must be a positive number')
        opts.seconds = n
        break
      }
      case '--tenants': {
        const v = value()
        if (/^\d+$/.test(v)) {
          const n = Number(v)
          if (n < 2) fail('--tenants needs at least 2 tenants (one noisy, one quiet)')
          opts.tenants = ['noisy', ...Array.from({ length: n - 1 }, (_, k) => `quiet-${k + 1}`)]
        } else {
          opts.tenants = v.split(',').map((t) => t.trim()).filter(Boolean)
          if (opts.tenants.length < 2) fail('--tenants needs at least 2 tenants (one noisy, one quiet)')
        }
        break
      }
      case '--schema':
        opts.schema = value()
        break
      case '--login-suffix':
        opts.loginSuffix = value()
        if (!/^[a-z0-9_]{1,20}$/.test(opts.loginSuffix)) fail('--login-suffix must be 1-20 of a-z, 0-9, _')
        break
      case '--keep':
        opts.keep = true
        break
      case '--stay':
        opts.stay = true
        break
      case '--no-live':
        opts.refreshMs = 0
        break
      case '--help':
      case '-h':
        process.stdout.write(`${USAGE}\n`)
        process.exit(0)
      default:
        fail(`unknown option ${arg}`)
    }
  }
  if (Number.isNaN(opts.seconds)) opts.seconds = opts.short ? 8 : 30
  return opts
}

function fail(message: string): never {
  process.stderr.write(`${message}\n${USAGE}\n`)
  process.exit(2)
}
