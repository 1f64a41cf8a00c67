import type pg from 'pg'
import { jobRescueExpired } from './queries/jobs.js'

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
 * after max_attempts instead of looping forever.
 */
export class LeaseRescuer {
  constructor(private readonly options: { schema: string; batchSize: number }) {}

  async run(pool: pg.Pool): Promise<RescueResult> {
    const r = await jobRescueExpired(pool, { schema: this.options.schema, limit: this.options.batchSize })
    return { ...r, more: r.rescued + r.failed >= this.options.batchSize }
  }
}
