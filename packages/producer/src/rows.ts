import { decodeBody, type RetryPolicy } from '@pgqueue/core/internal'
import type { HistoryRow } from './queries/job-history.js'
import type { JobRow } from './queries/jobs.js'
import type { MetadataRow } from './queries/worker-metadata.js'
import type { QueueRow } from './queries/queues.js'
import type { ScheduleRow } from './queries/schedules.js'
import type { HistoryEntry, LiveJob, MetadataEntry, QueueConfig, Schedule } from './types.js'

/** Maps a jobs row to the public Job. */
export function toJob(r: JobRow): LiveJob {
  return {
    kind: 'live',
    id: r.id,
    tenantId: r.tenant_id,
    queue: r.queue,
    type: r.type,
    key: r.key,
    state: r.state,
    priority: r.priority,
    runAt: r.run_at,
    payload: r.payload,
    payloadType: r.payload_type,
    data: decodeBody(r.payload, r.payload_type),
    target: r.target,
    attempt: r.attempt,
    maxAttempts: r.max_attempts,
    retryPolicy: (r.retry_policy ?? null) as RetryPolicy | null,
    leaseExpiresAt: r.lease_expires_at,
    cancelRequested: r.cancel_requested,
    lastError: r.last_error,
    scheduleId: r.schedule_id,
    retryOf: r.retry_of,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    startedAt: r.started_at,
    flowId: r.flow_id,
  }
}

/** Maps a job_history row to the public HistoryEntry. */
export function toHistoryEntry(r: HistoryRow): HistoryEntry {
  return {
    kind: 'history',
    id: r.id,
    tenantId: r.tenant_id,
    queue: r.queue,
    type: r.type,
    key: r.key,
    state: r.state,
    priority: r.priority,
    payload: r.payload,
    payloadType: r.payload_type,
    data: decodeBody(r.payload, r.payload_type),
    target: r.target,
    result: r.result,
    resultType: r.result_type,
    resultData: decodeBody(r.result, r.result_type),
    error: r.error,
    attempt: r.attempt,
    maxAttempts: r.max_attempts,
    scheduleId: r.schedule_id,
    retryOf: r.retry_of,
    workerId: r.worker_id,
    createdAt: r.created_at,
    runAt: r.run_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    flowId: r.flow_id ?? null,
  }
}

/** Maps a queues row to the public QueueConfig. */
export function toQueueConfig(r: QueueRow): QueueConfig {
  return {
    queue: r.queue,
    paused: r.paused,
    retryPolicy: (r.retry_policy ?? null) as RetryPolicy | null,
    maxConcurrency: r.max_concurrency,
    displayName: r.display_name,
    keepCompleted: r.keep_completed,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  }
}

/** Maps a schedules row to the public Schedule. */
export function toSchedule(r: ScheduleRow): Schedule {
  return {
    id: r.id,
    tenantId: r.tenant_id,
    key: r.key,
    queue: r.queue,
    type: r.type,
    schedule: r.cron !== null ? { cron: r.cron, timezone: r.timezone ?? 'UTC' } : { every: Number(r.every_ms) },
    missedPolicy: r.missed_policy,
    payload: r.payload,
    payloadType: r.payload_type,
    target: r.target,
    priority: r.priority,
    retryPolicy: (r.retry_policy ?? null) as RetryPolicy | null,
    paused: r.paused,
    anchorAt: r.anchor_at,
    nextRunAt: r.next_run_at,
    lastRunAt: r.last_run_at,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  }
}

/** Maps a worker_metadata row to the public MetadataEntry. */
export function toMetadataEntry(r: MetadataRow): MetadataEntry {
  return { key: r.key, value: r.value, updatedAt: r.updated_at }
}
