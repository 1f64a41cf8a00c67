export { ScheduleRunner } from './schedule-runner.js'
export type { ScheduleBatchResult, ScheduleFired, ScheduleSkipped, ScheduleInvalid, ScheduleRunnerEvents } from './schedule-runner.js'
export type { ScheduleRunnerOptions, ResolvedScheduleRunnerOptions } from './options.js'
export type { MissedPolicy } from './plan.js'
