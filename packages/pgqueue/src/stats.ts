/** The `pgqueue/stats` import path. */
export * from '@pgqueue/stats'
