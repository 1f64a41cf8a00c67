/** The `pgqueue/maintenance` import path: what the schema owner runs. */
export * from '@pgqueue/maintenance'
