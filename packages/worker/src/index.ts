export { Worker, type WorkerEvents } from './worker.js'
export { resolveWorkerOptions, type WorkerOptions, type ResolvedWorkerOptions } from './options.js'
export { BACK_OFF_MAX_MS, JobAbortedError, JobBackOffError, type AbortReason, type Job, type JobContext, type JobHandler, type JobHandlers, type HandlerResult } from './job.js'
export { MAX_ERROR_MESSAGE, MAX_ERROR_STACK, type ErrorInfo } from './error-info.js'
