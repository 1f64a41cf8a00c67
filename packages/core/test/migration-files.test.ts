import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { migrationChecksum, migrations } from '@pgqueue/core/internal'

// Checksums recorded from the released migrations when their bodies moved from .ts template strings
// to .sql files. An installation stores these values; a different one makes initialize() fail.
const RELEASED: Array<[number, string, string]> = [
  [1, 'initial', 'b57f441902dfb33c0c30ee6a018b996d33e0677c03e8b35407293aa4792f5564'],
  [2, 'push_queue_retry_policy', 'a44d26feea9df08380885e10ff3df6105d7f8de8b7253b960d816d96844f74e5'],
  [4, 'schedules_tenant_due', '154c64e64c8a97a420b9ecd5f65f27c94554caa22c117ae96cafcaf3adaf266e'],
  [6, 'hold_jobs', '1c506eaa34f7b951514e9096f3d627727d2d39f4d8bcd4d35364e9b73d4435f6'],
  [7, 'lease_owner_running', '093a3837026c62a16c03dabba925b8d9605cb1ecf580d8800fc8a7016b526b16'],
  [8, 'fair_clock_plans', 'cd1d20151a8dd7d7bac17786930836967e3a4302207602116c2a44f91fa95323'],
  [9, 'stats_rollups', '4ecb788a5f9aa406f40d63d1f06ef873d5c9f7d50454d4331f3a75eb5e049f78'],
  [10, 'history_finished_brin', '2925c07b27aa1fe7d6896216baed2bcafe236bf51a5778e6a937837658dfa878'],
  [11, 'jobs_state_index', '9608384cd76700eac981ffb86f2ff7ba4cec613466c3af7e0e665d928f42eaef'],
  [12, 'tenant_credential', '2b7c2b551f98ad5251c82c1c076ba4e41df438c96b645c79393bfd4deed2d21c'],
  [13, 'limits_and_locks', '83106ec350e69f572b3189f326ba649ffea7ee2acaf81b443b966180267ff70a'],
  [14, 'fair_clock_try', 'be427f203c76cbe40212e3d41377b10e8a0fdaccc50beee7d365776ba17bbae7'],
  [15, 'fair_order', 'ce8061ada675c40f6c87ab5cd28bd845a8fbb3a7d8ac4bd4d81c17250658833a'],
  [16, 'queue_defaults', '018475f575484381e5ad8b9831106e00885a344f94fc6860953416bdbd450105'],
  [17, 'identifier_collation_and_history_choice', '2cdafce3a4692c52d00f675966e1361d86e2007c5390a6a2dcd0816e5f786fb2'],
  [18, 'rate_limits', '7d1656ab9c4f44a2716ebd7394f7e7545164020e1f8ea78dfcfbeacce652fc1e'],
  [19, 'flows', '21692f2e3c0111841237fb5b0ff5e1d2924c143f8695d3027689482de32821ee'],
  [20, 'trace_context', 'b2471e6dc921089450be532c4dc38f074663b1332fde9068203479392a71db7d'],
  [21, 'live_counts_waiting', '252298ab0f2531697f56d94f4317b83f6aaeb70c728b2fe02f067cb80649ba5d'],
  [22, 'clock_head_from', '463c6688f859544e23a8c3758069e3fc4bcd6e222fa40ba625a81c3c3ed5a061'],
  [23, 'claim_index_keyset', 'e9757ea94b3fe8dcdbb45a0f0c83b46630306f81e43149a07fcdc2cabc6d3f79'],
  [24, 'state_index_skips_pending', 'd9c0aac596998adb9ab7f965c3b2749d32b9b5fd3d3810596e9cf84ba1b355bb'],
  [25, 'failure_indexes', 'fff2575188d3ffddb0c21980647048d1f8cd86fb865c8a3f863036cbf9fae8f6'],
]

describe('migration files', () => {
  it('the generated module matches the .sql files', () => {
    const r = spawnSync(process.execPath, [join(import.meta.dirname, '..', 'scripts', 'generate-migrations.mjs'), '--check'], { encoding: 'utf8' })
    expect(r.stderr).toBe('')
    expect(r.status).toBe(0)
  })

  it('released migrations keep their names and checksums', () => {
    const now = migrations.filter((m) => m.version <= RELEASED.at(-1)![0]).map((m) => [m.version, m.name, migrationChecksum(m)])
    expect(now).toEqual(RELEASED)
  })

  it('versions ascend and never repeat', () => {
    const versions = migrations.map((m) => m.version)
    expect(versions).toEqual([...versions].sort((a, b) => a - b))
    expect(new Set(versions).size).toBe(versions.length)
  })
})
