import { performance } from 'node:perf_hooks'

/** Resolves waiters when woken; a wake with no waiter is remembered for the next wait. */
export class Wakeup {
  private pending = false
  private resolve: (() => void) | undefined
  wake(): void {
    this.pending = true
    this.resolve?.()
  }
  wait(ms: number): Promise<void> {
    if (this.pending) {
      this.pending = false
      return Promise.resolve()
    }
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms)
      const self = this
      function done() {
        clearTimeout(timer)
        self.resolve = undefined
        self.pending = false
        resolve()
      }
      this.resolve = done
    })
  }
}

/**
 * Spaces the claims of an idle worker (a token bucket): `burst` claims at once, then one per `gapMs`.
 * A claim that found work gives its token back and one more, for the empty claim that usually follows
 * it (the buffer ran dry), so only claims with nothing behind them are paced: a flood of notifications
 * that announce nothing costs a bounded number of statements, real work none.
 */
export class IdleClaimPacer {
  private tokens: number
  private last = performance.now()
  constructor(
    private readonly gapMs: number,
    private readonly burst = 4,
  ) {
    this.tokens = burst
  }
  /** Takes a token and returns 0, or returns how long to wait for one. */
  take(): number {
    if (this.gapMs === 0) return 0
    const now = performance.now()
    this.tokens = Math.min(this.burst, this.tokens + (now - this.last) / this.gapMs)
    this.last = now
    if (this.tokens >= 1) {
      this.tokens -= 1
      return 0
    }
    return Math.ceil((1 - this.tokens) * this.gapMs)
  }
  /** The claim found work. */
  credit(): void {
    this.tokens = Math.min(this.burst, this.tokens + 2)
  }
}
