// The public API: what applications call. Sibling packages import the rest from '@pgqueue/core/internal'.
export {
  PgQueueError,
  PgQueueValidationError,
  PgQueueTenantRequiredError,
  PgQueueTenantAccessError,
  PgQueueNotFoundError,
  PgQueueJobRunningError,
  PgQueueMigrationError,
  PgQueueRoleSetupError,
  PgQueueStoppedError,
  PgQueueSetupError,
  PgQueueQueryTimeoutError,
  type PgQueueErrorCode,
} from './errors.js'
export { migrate, type MigrateOptions, type MigrateResult } from './migrate.js'
export { LATEST_SCHEMA_VERSION } from './installation.js'
export { DEFAULT_SCHEMA, DEFAULT_WORKER_ROLE, DEFAULT_USER_ROLE, type SchemaOptions } from './options.js'
export { TENANT_SECRET_ENV } from './tenant.js'
export type { Connectable } from './connect.js'
export type { JobState, HistoryState } from './database.js'
export { DEFAULT_RETRY_POLICY, type RetryPolicy } from './retry-policy.js'
export type { ScheduleSpec } from './schedule.js'
export type { PartitionGranularity } from './history-partitions.js'
export { LIMITS } from './validate.js'
export { JSON_TYPE, decodeBody } from './body.js'
export { silentLogger, warningsLogger, type Logger, type LogFields, type ServiceEvents } from './service.js'
export { ERROR_CODES, MAX_ERROR_MESSAGE, MAX_ERROR_STACK, type ErrorInfo } from './error-info.js'
export { fairWeightSet, fairWeightDelete, fairWeightList, WEIGHT_RANGE, type FairWeight } from './queries/fair-weights.js'
export { queueDefaultSet, queueDefaultDelete, queueDefaultList, type QueueDefault } from './queries/queue-defaults.js'
export { rateLimitSet, rateLimitDelete, rateLimitList, RATE_LIMIT_RANGE, type RateLimit, type RateLimitState } from './queries/rate-limits.js'
export type { RegisteredJobType, JobPayload, JobResult } from './job-types.js'
export type { TelemetryOptions, StoredTraceContext } from './telemetry.js'
