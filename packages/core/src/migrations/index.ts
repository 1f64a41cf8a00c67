import { migrationFiles } from './sql.generated.js'

/** One forward-only schema change. `sql` is a template; see renderMigration(). */
export interface Migration {
  version: number
  name: string
  sql: string
}

/**
 * Every migration, in order: the NNNN_name.sql files of this folder, embedded at build time (see
 * README.md here). Append only: released migrations are never edited or renumbered.
 */
export const migrations: readonly Migration[] = migrationFiles
