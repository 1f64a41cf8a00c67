/** A buffered job older than this halves the claim size. */
export const BUFFER_WAIT_SHRINK_MS = 500

/**
 * The claim size, adapted between max(concurrency, 10) and batchSize (see WorkerOptions.batchSize):
 * it doubles when handlers ran dry while a claim was on its way (claims too small for their pace) and
 * halves when a claimed job waited long in the buffer (claims outpace the handlers, and jobs held under
 * lease here could run on other workers). Pure arithmetic, no clock of its own.
 */
export class ClaimSizer {
  /** The smallest claim. */
  readonly min: number
  private current: number

  constructor(
    private readonly concurrency: number,
    private readonly batchSize: number,
  ) {
    this.min = Math.min(batchSize, Math.max(concurrency, 10))
    this.current = this.min
  }

  get size(): number {
    return this.current
  }

  /** The next claim goes out when the buffer falls to this. */
  get lowWater(): number {
    return Math.floor(this.current / 2)
  }

  /** Handlers sat idle waiting for a claim that then brought jobs. */
  grow(): void {
    this.current = Math.min(this.batchSize, this.current * 2)
  }

  /** A buffered job starts after waiting `waitedMs` in the buffer. */
  started(waitedMs: number): void {
    if (waitedMs > BUFFER_WAIT_SHRINK_MS) this.current = Math.max(this.min, Math.floor(this.current / 2))
  }

  /**
   * How many jobs the next claim may take: handler slots plus one claim's worth, less what runs, waits
   * in the buffer, or is finished but not recorded beyond two completion batches (those still hold
   * leases: a slow database slows claiming instead of letting unrecorded jobs pile up). Zero or less
   * means no claim now.
   */
  room(p: { inFlight: number; buffered: number; unrecorded: number; completeBatchSize: number }): number {
    const backlog = Math.max(0, p.unrecorded - 2 * p.completeBatchSize)
    return this.concurrency + this.current - p.inFlight - p.buffered - backlog
  }
}
