export { Worker, type WorkerEvents } from './worker.js'
export type { WorkerOptions, ResolvedWorkerOptions } from './options.js'
export { JobAbortedError, type AbortReason, type Job, type JobContext, type JobHandler, type JobHandlers, type HandlerResult } from './job.js'
export type { ErrorInfo } from '@pgqueue/core'
