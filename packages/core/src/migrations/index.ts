import initial from './0001_initial.js'

/** One forward-only schema change. `sql` is a template; see renderMigration(). */
export interface Migration {
  version: number
  name: string
  sql: string
}

/** Every migration, in order. Append only: released entries are never edited or renumbered. */
export const migrations: readonly Migration[] = [{ version: 1, name: 'initial', sql: initial }]
