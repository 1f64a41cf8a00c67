/** The `pgqueue/queues` import path: producing and processing jobs. */
export { Queues, TenantQueues, createProducer } from '@pgqueue/producer'
export type * from '@pgqueue/producer'
export { Worker, JobAbortedError, JobBackOffError } from '@pgqueue/worker'
export type { WorkerOptions, WorkerEvents, Job, JobContext, JobHandler, JobHandlers, HandlerResult, FlowParent, FlowAddNode, FlowHandle } from '@pgqueue/worker'
export { Scheduler } from '@pgqueue/scheduler'
export type { SchedulerOptions, SchedulerEvents } from '@pgqueue/scheduler'
