import { EventEmitter } from 'node:events'
import { PgQueueStoppedError } from './errors.js'

/** Structured fields of one log line: `queue`, `jobId`, `nodeId`, `tenantId`, `err`, counts... */
export type LogFields = Record<string, unknown>

/**
 * The logging interface every component takes, in pino's shape: fields first, message second, so a
 * line's queue, job id and node id stay fields a log pipeline can filter on, never text inside the
 * message. pino and its children fit as they are; so does `console` (it prints the fields object,
 * then the message). `child()` is optional: when present, components call it once with their own
 * fields (`component`, `nodeId`) instead of repeating them on every line. Errors go in `err`.
 */
export interface Logger {
  debug(fields: LogFields, message: string): void
  info(fields: LogFields, message: string): void
  warn(fields: LogFields, message: string): void
  error(fields: LogFields, message: string): void
  child?(bindings: LogFields): Logger
}

/** A logger that drops everything. */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} }

function consoleLine(write: (...data: unknown[]) => void): (fields: LogFields, message: string) => void {
  return (fields, message) => write(`pgqueue: ${message}`, ...(Object.keys(fields).length === 0 ? [] : [fields]))
}

/** Warnings and errors to the console, prefixed with `pgqueue`, fields after the message; debug and info dropped. */
export const warningsLogger: Logger = {
  debug() {},
  info() {},
  warn: consoleLine((...data) => console.warn(...data)),
  error: consoleLine((...data) => console.error(...data)),
}

/**
 * `logger` with `bindings` added to every line: the logger's own child() when it has one (pino),
 * else a wrapper that merges them under each line's fields.
 */
export function childLogger(logger: Logger, bindings: LogFields): Logger {
  if (typeof logger.child === 'function') return logger.child(bindings)
  const merged = (level: 'debug' | 'info' | 'warn' | 'error') => (fields: LogFields, message: string) => logger[level]({ ...bindings, ...fields }, message)
  return {
    debug: merged('debug'),
    info: merged('info'),
    warn: merged('warn'),
    error: merged('error'),
    child: (more) => childLogger(logger, { ...bindings, ...more }),
  }
}

/** Time as components see it; injected so tests can move it without sleeping. */
export interface Clock {
  now(): Date
}

export const systemClock: Clock = { now: () => new Date() }

/** Resolves after `ms`, or at once when `signal` aborts. Never rejects. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve()
    const timer = setTimeout(done, ms)
    function done() {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    signal?.addEventListener('abort', done, { once: true })
  })
}

/** Events every long-running component emits. */
export interface ServiceEvents {
  /** A loop iteration failed; the component keeps running and retries with backoff. */
  error: [error: Error]
  started: []
  stopped: []
}

export interface LoopServiceOptions {
  /** Name used in logs and errors. */
  name: string
  /** Pause between iterations when the last one found nothing to do. */
  idleMs: number
  logger?: Logger
  /** Upper bound of the backoff after consecutive failures. Default 10 s. */
  maxBackoffMs?: number
}

/**
 * The shared shape of a periodic component: `start()` runs `loopStep()` in a loop, immediately again
 * while it reports more work, after `idleMs` otherwise, and sooner when `wake()` is called; failures
 * (a database restart, say) are reported as 'error' events and retried with capped exponential
 * backoff, never thrown to the caller. `stop()` ends the loop and waits for the iteration in flight;
 * `close()` also releases the connections and finishes the component. Subclasses add a public
 * `runOnce()` (one iteration now, with its result); see docs/ARCHITECTURE.md, "Component vocabulary".
 */
export abstract class LoopService<Events extends Record<keyof Events, unknown[]> & ServiceEvents = ServiceEvents> extends EventEmitter<Events> {
  protected readonly logger: Logger
  private readonly loopOptions: LoopServiceOptions
  private running = false
  private loop: Promise<void> | undefined
  private stopController = new AbortController()
  private wakeController = new AbortController()
  private closed = false

  protected constructor(options: LoopServiceOptions) {
    super()
    this.loopOptions = options
    this.logger = options.logger ?? warningsLogger
  }

  /** One iteration of the loop. Return true when there may be more work right away. */
  protected abstract loopStep(): Promise<boolean>

  /** Hooks for subclasses (listeners, node registration). */
  protected async onStart(): Promise<void> {}
  protected async onStop(): Promise<void> {}
  /** Ends the connections the component opened (close()); a pool the caller passed stays open. */
  protected async release(): Promise<void> {}

  get isRunning(): boolean {
    return this.running
  }

  /**
   * Starts the loop. A second call while running does nothing. Rejects with PgQueueSetupError when the
   * login or the schema is wrong (the component can be started again once fixed), and with
   * PgQueueStoppedError after close().
   */
  async start(): Promise<void> {
    this.assertOpen()
    if (this.running) return
    this.running = true
    this.stopController = new AbortController()
    try {
      await this.onStart()
    } catch (err) {
      // A component that cannot start (wrong role, schema missing) releases what it opened and can be
      // started again once the cause is fixed.
      this.running = false
      await this.onStop().catch(() => {})
      throw err
    }
    this.loop = this.runLoop()
    this.untypedEmit('started')
  }

  /** Ends the loop; resolves after the iteration in flight has finished. */
  async stop(): Promise<void> {
    if (!this.running) return
    this.running = false
    this.stopController.abort()
    await this.loop
    this.loop = undefined
    await this.onStop()
    this.untypedEmit('stopped')
  }

  /**
   * Stops the loop if it runs (waiting for the iteration in flight) and ends every connection the
   * component opened; a pool you passed stays open. The component is finished: start() and runOnce()
   * throw PgQueueStoppedError afterwards. Safe to call more than once.
   */
  async close(): Promise<void> {
    this.closed = true
    await this.stop()
    await this.release()
  }

  /** Throws PgQueueStoppedError after close(). */
  protected assertOpen(): void {
    if (this.closed) throw new PgQueueStoppedError(this.loopOptions.name)
  }

  /** Runs the next iteration now instead of after the idle pause. */
  wake(): void {
    this.wakeController.abort()
  }

  protected get stopSignal(): AbortSignal {
    return this.stopController.signal
  }

  protected reportError(err: unknown): void {
    const error = err instanceof Error ? err : new Error(String(err))
    this.logger.error({ component: this.loopOptions.name, err: error }, `${this.loopOptions.name}: ${error.message}`)
    // Emit only when someone listens: an unhandled 'error' event would crash the process.
    if ((this as unknown as EventEmitter).listenerCount('error') > 0) this.untypedEmit('error', error)
  }

  /** Emits an event declared in ServiceEvents (TypeScript cannot relate them to a generic Events). */
  protected untypedEmit(event: string, ...args: unknown[]): void {
    ;(this as unknown as EventEmitter).emit(event, ...args)
  }

  private async runLoop(): Promise<void> {
    let failures = 0
    while (this.running) {
      let more = false
      // A wake() during loopStep() must cut the sleep that follows it, so the controller is fresh here.
      this.wakeController = new AbortController()
      try {
        more = await this.loopStep()
        failures = 0
      } catch (err) {
        failures += 1
        this.reportError(err)
      }
      if (!this.running) break
      if (more && failures === 0) continue
      const wait = failures > 0 ? Math.min(this.loopOptions.maxBackoffMs ?? 10_000, 100 * 2 ** Math.min(failures, 10)) : this.loopOptions.idleMs
      await sleep(wait, AbortSignal.any([this.stopController.signal, this.wakeController.signal]))
    }
  }
}
