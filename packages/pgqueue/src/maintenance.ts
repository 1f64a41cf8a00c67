/** The seed's `pgqueue/maintenance` import path. */
export * from '@pgqueue/maintenance'
