import { describe, expect, it } from 'vitest'
import * as pgqueue from 'pgqueue'
import * as core from '@pgqueue/core'

// The names an application can import. A new name here is a public promise: add it on purpose
// (internals shared between packages belong in '@pgqueue/core/internal').
describe('public API', () => {
  it('exports from pgqueue exactly what users call', () => {
    expect(Object.keys(pgqueue).sort()).toEqual([
      'Coordinator', 'DEFAULT_RETRY_POLICY', 'DEFAULT_SCHEMA', 'DEFAULT_USER_ROLE', 'DEFAULT_WORKER_ROLE', 'ERROR_CODES',
      'JSON_TYPE', 'JobAbortedError', 'JobBackOffError', 'LATEST_SCHEMA_VERSION', 'LIMITS', 'MAX_ERROR_MESSAGE',
      'MAX_ERROR_STACK', 'Maintenance', 'PgQueueError', 'PgQueueJobRunningError', 'PgQueueMigrationError',
      'PgQueueNotFoundError', 'PgQueueQueryTimeoutError', 'PgQueueRoleSetupError', 'PgQueueSetupError',
      'PgQueueStoppedError', 'PgQueueTenantAccessError', 'PgQueueTenantRequiredError', 'PgQueueValidationError',
      'Queues', 'RATE_LIMIT_RANGE', 'ScheduleRunner', 'Scheduler', 'Schedules', 'Stats', 'TENANT_SECRET_ENV', 'TenantQueues',
      'TenantSchedules', 'TenantStats', 'TenantWorkerMetadata', 'WEIGHT_RANGE', 'Worker', 'createProducer',
      'decodeBody', 'default', 'fairWeightDelete', 'fairWeightList', 'fairWeightSet', 'initialize', 'migrate',
      'queueDefaultDelete', 'queueDefaultList', 'queueDefaultSet', 'quickstart', 'rateLimitDelete', 'rateLimitList', 'rateLimitSet',
      'silentLogger', 'warningsLogger',
    ])
  })

  it('keeps helpers shared between packages out of @pgqueue/core', async () => {
    const internal = await import('@pgqueue/core/internal')
    for (const name of ['connect', 'unquotedArrayLiteral', 'jitOffSetLocal', 'nodeHeartbeat', 'checkInstallation', 'TenantKey']) {
      expect(name in core, name).toBe(false)
      expect(name in internal, name).toBe(true)
    }
  })
})
