import type pg from 'pg'
import { jobRescueExpired } from './queries/jobs.js'
import { inTransaction, type TransactionTimeouts } from './transaction.js'

/** What one rescue pass did. */
export interface RescueResult {
  /** Jobs whose lease expired, sent back to be run again. */
  rescued: number
  /** Jobs whose lease expired with no attempts left (or a cancel pending), moved to history. */
  failed: number
  more: boolean
}

/**
 * Rescues jobs whose worker stopped renewing their lease (crash, kill -9, network partition). The
 * attempt was counted by the claim, so a job that keeps killing its worker ends in failed history
 * after max_attempts instead of looping forever. Its own transaction, apart from promotion and
 * release, so nothing a tenant holds there can hold up a rescue.
 */
export class LeaseRescuer {
  constructor(private readonly options: { schema: string; batchSize: number; timeouts: TransactionTimeouts }) {}

  async run(pool: pg.Pool): Promise<RescueResult> {
    const { schema, batchSize, timeouts } = this.options
    const r = await inTransaction(pool, timeouts, (client) => jobRescueExpired(client, { schema, limit: batchSize }))
    return { ...r, more: r.rescued + r.failed >= batchSize }
  }
}
