export { Worker, type WorkerEvents } from './worker.js'
export type { WorkerOptions, ResolvedWorkerOptions } from './options.js'
export { BACK_OFF_MAX_MS, JobAbortedError, JobBackOffError, type AbortReason, type Job, type JobContext, type JobHandler, type JobHandlers, type HandlerResult, type FlowParent, type FlowAddNode, type FlowHandle } from './job.js'
export type { ErrorInfo } from '@pgqueue/core'
