/** The `pgqueue/schedules` import path: defining schedules and firing them. */
export { Schedules, TenantSchedules } from '@pgqueue/producer'
export { ScheduleRunner } from '@pgqueue/schedule-runner'
export type { ScheduleRunnerOptions, ScheduleRunnerEvents } from '@pgqueue/schedule-runner'
