import type { LibAdapter, LibName } from '../types.js'

/** Loads only the library a child runs, so one library's import never costs another's run. */
export async function loadAdapter(lib: LibName): Promise<LibAdapter> {
  switch (lib) {
    case 'pgqueue':
    case 'pgqueue-node20':
      return new (await import('./pgqueue.js')).PgqueueAdapter()
    case 'pg-boss':
      return new (await import('./pgboss.js')).PgBossAdapter()
    case 'graphile-worker':
      return new (await import('./graphile.js')).GraphileAdapter()
    case 'floor':
      return new (await import('./floor.js')).FloorAdapter()
  }
}
