import { existsSync, readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { MaintenanceOptions } from '@pgqueue/maintenance'
import type { ScheduleRunnerOptions } from '@pgqueue/schedule-runner'
import type { SchedulerOptions } from '@pgqueue/scheduler'
import type { JobHandler, JobHandlers, WorkerOptions } from '@pgqueue/worker'
import { usageError } from './errors.js'

/**
 * What a config file exports (default export, or the module itself): connection settings shared by
 * every command, and the options (and handlers) of the components `pgqueue worker`, `scheduler`,
 * `schedule-runner` and `maintenance` run. A `.json` file holds the plain settings only.
 */
export interface CliConfig {
  /** Database URL; the login decides what a command may do (admin, worker role or user role). */
  databaseUrl?: string
  schema?: string
  workerRole?: string
  userRole?: string
  /** The installation's tenant secret, for tenant-scoped commands on a user-role login. */
  tenantSecret?: string
  /** `pgqueue worker`: the handlers (one function, or one per job type) and the Worker's options. */
  worker?: { handlers: JobHandler | JobHandlers; options?: Omit<WorkerOptions, 'schema'> }
  scheduler?: Omit<SchedulerOptions, 'schema'>
  scheduleRunner?: Omit<ScheduleRunnerOptions, 'schema'>
  maintenance?: Omit<MaintenanceOptions, 'schema' | 'workerRole' | 'userRole'>
}

/** Types a config module: `export default defineConfig({ ... })`. */
export function defineConfig(config: CliConfig): CliConfig {
  return config
}

/** The flags every command takes. */
export interface GlobalFlags {
  url?: string
  schema?: string
  workerRole?: string
  userRole?: string
  config?: string
  json?: boolean
  verbose?: boolean
}

/** Settings after flags, then PGQUEUE_* variables (and DATABASE_URL), then the config file. */
export interface Settings {
  databaseUrl: string | undefined
  schema: string | undefined
  workerRole: string | undefined
  userRole: string | undefined
  tenantSecret: string | undefined
  config: CliConfig
  configPath: string | undefined
  json: boolean
  verbose: boolean
}

const DEFAULT_FILES = ['pgqueue.config.mjs', 'pgqueue.config.js', 'pgqueue.config.json']

/** Loads the config file (--config, PGQUEUE_CONFIG, else pgqueue.config.{mjs,js,json} in the working directory). */
export async function loadConfig(explicit: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<{ config: CliConfig; path: string | undefined }> {
  const given = explicit ?? env.PGQUEUE_CONFIG
  const path = given !== undefined ? resolve(given) : DEFAULT_FILES.map((f) => resolve(f)).find((f) => existsSync(f))
  if (path === undefined) return { config: {}, path: undefined }
  if (!existsSync(path)) throw usageError(`config file not found: ${path}`)
  let loaded: unknown
  try {
    if (path.endsWith('.json')) loaded = JSON.parse(readFileSync(path, 'utf8'))
    else {
      const mod = (await import(pathToFileURL(path).href)) as { default?: unknown }
      loaded = mod.default ?? mod
    }
  } catch (err) {
    throw usageError(`cannot load config file ${path}: ${(err as Error).message}`)
  }
  if (typeof loaded !== 'object' || loaded === null || Array.isArray(loaded)) throw usageError(`config file ${path} must export an object`)
  return { config: loaded as CliConfig, path }
}

/** Merges flags, environment and config file, in that order of precedence. */
export async function resolveSettings(flags: GlobalFlags, env: NodeJS.ProcessEnv = process.env): Promise<Settings> {
  const { config, path } = await loadConfig(flags.config, env)
  return {
    databaseUrl: flags.url ?? env.PGQUEUE_DATABASE_URL ?? env.DATABASE_URL ?? config.databaseUrl,
    schema: flags.schema ?? env.PGQUEUE_SCHEMA ?? config.schema,
    workerRole: flags.workerRole ?? env.PGQUEUE_WORKER_ROLE ?? config.workerRole,
    userRole: flags.userRole ?? env.PGQUEUE_USER_ROLE ?? config.userRole,
    tenantSecret: env.PGQUEUE_TENANT_SECRET ?? config.tenantSecret,
    config,
    configPath: path,
    json: flags.json === true,
    verbose: flags.verbose === true,
  }
}

/** The database URL, or a usage error naming the three ways to give one. */
export function requireUrl(settings: Settings): string {
  const url = settings.databaseUrl
  if (url === undefined || url === '') {
    throw usageError('no database URL: pass --url, set PGQUEUE_DATABASE_URL (or DATABASE_URL), or set databaseUrl in the config file')
  }
  try {
    const parsed = new URL(url)
    if (!/^postgres(ql)?:$/.test(parsed.protocol)) throw new Error()
  } catch {
    throw usageError('the database URL must look like postgres://user:password@host:5432/database')
  }
  return url
}

/** Schema and role names to hand to the packages (undefined keeps their defaults). */
export function schemaOptions(settings: Settings): { schema?: string; workerRole?: string; userRole?: string } {
  const out: { schema?: string; workerRole?: string; userRole?: string } = {}
  if (settings.schema !== undefined) out.schema = settings.schema
  if (settings.workerRole !== undefined) out.workerRole = settings.workerRole
  if (settings.userRole !== undefined) out.userRole = settings.userRole
  return out
}
