import { performance } from 'node:perf_hooks'
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Link } from '@opentelemetry/api'
import { contextFromStored, messagingAttributes, secondsSince, type Telemetry } from '@pgqueue/core/internal'
import type { Settled } from './job-executor.js'
import type { FinishInput } from './queries/jobs.js'
import type { Run } from './run.js'

const PROCESS = { name: 'process', type: 'process' } as const

/**
 * The Worker's spans and metrics (semantic conventions for messaging). Built only when telemetry
 * records (resolveTelemetry() gave one), so a Worker without an SDK never reaches this code.
 * Metric attributes are cached per queue (and tenant when opted in), so a job allocates none.
 */
export class WorkerTelemetry {
  private readonly attributes = new Map<string, Attributes>()

  constructor(readonly t: Telemetry) {}

  private attributesFor(operation: { name: string; type: string }, queue: string | undefined, tenantId: string): Attributes {
    const key = `${operation.name}\u0000${queue ?? ''}\u0000${this.t.tenantAttribute ? tenantId : ''}`
    let a = this.attributes.get(key)
    if (a === undefined) {
      // Bounded by queues (times tenants when opted in, which the option's documentation warns about).
      if (this.attributes.size > 10_000) this.attributes.clear()
      a = Object.freeze(messagingAttributes(this.t, operation, queue, tenantId))
      this.attributes.set(key, a)
    }
    return a
  }

  /**
   * Starts the run's `process <queue>` span (CONSUMER): a child of the push's span when the job carries
   * its trace context, so push and run are one trace; every attempt of a job is a child of the same push.
   * Returns the context the handler runs in.
   */
  startProcess(run: Run): Context | undefined {
    const job = run.job
    const attributes = this.attributesFor(PROCESS, job.queue, job.tenantId)
    this.t.consumed?.add(1, attributes)
    if (!this.t.tracer) return undefined
    const parent = contextFromStored(run.row.trace_context) ?? ROOT_CONTEXT
    const span = this.t.tracer.startSpan(`process ${job.queue}`, {
      kind: SpanKind.CONSUMER,
      attributes: {
        ...attributes,
        'messaging.message.id': job.id,
        'messaging.pgqueue.job.type': job.type,
        'messaging.pgqueue.job.attempt': job.attempt,
      },
    }, parent)
    run.span = span
    return trace.setSpan(parent, span)
  }

  /** Ends the run's process span with its outcome and records messaging.process.duration. */
  endProcess(run: Run, outcome: Settled): void {
    const failed = outcome.kind === 'error'
    const type = failed ? outcome.error?.code ?? outcome.error?.name ?? '_OTHER' : undefined
    const attributes = this.attributesFor(PROCESS, run.job.queue, run.job.tenantId)
    this.t.processDuration?.record(secondsSince(run.startedAt, performance.now()), type === undefined ? attributes : { ...attributes, 'error.type': type })
    const span = run.span
    if (!span) return
    span.setAttribute('messaging.pgqueue.outcome', outcome.kind)
    if (type !== undefined) {
      span.setAttribute('error.type', type)
      span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.error?.message ?? 'failed' })
    }
    span.end()
  }

  /**
   * Records one batch of outcomes (the completer's single statement): a `settle` span (CLIENT) linked
   * to each run's process span, named by its operation (complete, fail, retry, release, back-off; `settle`
   * when mixed), and messaging.client.operation.duration.
   */
  settle(items: readonly FinishInput[], runs: readonly Run[], startedAt: number, error?: unknown): void {
    const first = items[0]
    if (first === undefined) return
    let operation: string = OPERATION[first.outcome]
    let queue: string | undefined = runs[0]?.job.queue
    for (let i = 1; i < items.length; i++) {
      if (OPERATION[items[i]!.outcome] !== operation) operation = 'settle'
      if (runs[i]?.job.queue !== queue) queue = undefined
    }
    const tenantId = runs[0]?.job.tenantId ?? first.tenantId
    const sameTenant = runs.every((r) => r.job.tenantId === tenantId)
    const attributes = this.attributesFor({ name: operation, type: 'settle' }, queue, sameTenant ? tenantId : '')
    const seconds = secondsSince(startedAt, performance.now())
    const errorType = error === undefined ? undefined : (error as { code?: string }).code ?? (error as Error).name ?? '_OTHER'
    this.t.operationDuration?.record(seconds, errorType === undefined ? attributes : { ...attributes, 'error.type': errorType })
    if (!this.t.tracer) return
    const links: Link[] = []
    for (const run of runs) if (run.span) links.push({ context: run.span.spanContext() })
    const spanAttributes: Attributes = { ...attributes }
    if (items.length === 1) spanAttributes['messaging.message.id'] = first.id
    else spanAttributes['messaging.batch.message_count'] = items.length
    // A single run's settle is a child of its process span; a batch's settle links them all.
    const only = runs.length === 1 ? runs[0]!.span : undefined
    const parent = only ? trace.setSpan(ROOT_CONTEXT, only) : ROOT_CONTEXT
    const span = this.t.tracer.startSpan(queue === undefined ? operation : `${operation} ${queue}`, {
      kind: SpanKind.CLIENT,
      attributes: spanAttributes,
      links: only ? [] : links,
      startTime: performance.timeOrigin + startedAt,
    }, parent)
    if (errorType !== undefined) {
      span.setAttribute('error.type', errorType)
      span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) })
    }
    span.end()
  }
}

const OPERATION: Record<FinishInput['outcome'], string> = {
  completed: 'complete',
  failed: 'fail',
  retry: 'retry',
  release: 'release',
  backoff: 'back_off',
}
