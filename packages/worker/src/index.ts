export { Worker, type WorkerEvents } from './worker.js'
export { resolveWorkerOptions, type WorkerOptions, type ResolvedWorkerOptions } from './options.js'
export { JobAbortedError, type AbortReason, type Job, type JobContext, type JobHandler, type JobHandlers, type HandlerResult } from './job.js'
export { MAX_ERROR_MESSAGE, MAX_ERROR_STACK, ERROR_CODES, type ErrorInfo } from '@pgqueue/core'
