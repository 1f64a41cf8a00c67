import type pg from 'pg'
import { PgQueueSetupError } from './errors.js'
import { migrations } from './migrations/index.js'
import { quoteIdent } from './options.js'

/** The pgqueue role a login holds, as installation() reports it. */
export type LoginRole = 'owner' | 'worker' | 'user' | 'none'

/** The highest schema version this build knows. */
export const LATEST_SCHEMA_VERSION = Math.max(...migrations.map((m) => m.version))

const ROLE_HINT: Record<LoginRole, string> = {
  owner: 'the schema owner (initialize() and Maintenance)',
  worker: 'a member of the worker role (queue_worker by default)',
  user: 'a member of the user role (queue_user by default)',
  none: 'a login with no pgqueue role',
}

/**
 * Checks, at a component's start, that the schema is installed at this build's version and that the
 * login holds one of the `accepted` roles; throws PgQueueSetupError saying what to run or which login to
 * use. `component` names the caller in the message. Undefined when the database cannot be reached: a
 * component then starts anyway and reports and retries, as it would after losing the connection.
 */
export async function checkInstallation(
  db: Pick<pg.Pool, 'query'>,
  params: { schema: string; component: string; accepted: readonly LoginRole[] },
): Promise<LoginRole | undefined> {
  const s = quoteIdent(params.schema)
  let row: { version: number | null; login_role: LoginRole } | undefined
  try {
    row = (await db.query<{ version: number | null; login_role: LoginRole }>(`select version, login_role from ${s}.installation()`)).rows[0]
  } catch (err) {
    const code = (err as { code?: string }).code
    if (code === undefined || /^(08|57P)/.test(code) || /^E[A-Z]+$/.test(code)) return undefined
    if (code === '3F000' || code === '42883' || code === '42P01') {
      throw new PgQueueSetupError(
        `${params.component}: pgqueue is not installed in schema "${params.schema}" (or is older than version 12): run pgqueue.initialize(adminUrl, { schema: '${params.schema}' }) as the schema owner first`, err)
    }
    if (code === '42501') {
      throw new PgQueueSetupError(
        `${params.component}: this login holds no pgqueue role in schema "${params.schema}": connect as ${params.accepted.map((r) => ROLE_HINT[r]).join(' or ')}`, err)
    }
    throw err
  }
  const version = row?.version ?? 0
  const role = row?.login_role ?? 'none'
  if (version < LATEST_SCHEMA_VERSION) {
    throw new PgQueueSetupError(
      `${params.component}: schema "${params.schema}" is at version ${version} and this build needs ${LATEST_SCHEMA_VERSION}: run pgqueue.initialize(adminUrl) as the schema owner`)
  }
  if (version > LATEST_SCHEMA_VERSION) {
    throw new PgQueueSetupError(
      `${params.component}: schema "${params.schema}" is at version ${version}, newer than this build knows (${LATEST_SCHEMA_VERSION}): upgrade pgqueue in this service`)
  }
  if (!params.accepted.includes(role)) {
    throw new PgQueueSetupError(
      `${params.component}: this login is ${ROLE_HINT[role]}; connect as ${params.accepted.map((r) => ROLE_HINT[r]).join(' or ')}`)
  }
  return role
}
