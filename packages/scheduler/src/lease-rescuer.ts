import type pg from 'pg'
import { jobRescueExpired, type RescueCounts } from '@pgqueue/core/internal'
import { inTransaction, type TransactionTimeouts } from './transaction.js'

/** What one rescue pass did. */
export interface RescueResult extends RescueCounts {
  more: boolean
}

/**
 * Rescues jobs whose worker stopped renewing their lease (crash, kill -9, network partition), with
 * core's jobRescueExpired (the query Maintenance's safety net uses too). Its own transaction, apart
 * from promotion and release, so nothing a tenant holds there can hold up a rescue.
 */
export class LeaseRescuer {
  constructor(private readonly options: { schema: string; batchSize: number; timeouts: TransactionTimeouts }) {}

  async run(pool: pg.Pool): Promise<RescueResult> {
    const { schema, batchSize, timeouts } = this.options
    const r = await inTransaction(pool, timeouts, (client) => jobRescueExpired(client, { schema, limit: batchSize }))
    return { ...r, more: r.rescued + r.failed + r.cancelled >= batchSize }
  }
}
