import { performance } from 'node:perf_hooks'
import { SpanKind, SpanStatusCode, context, trace, type Context, type Link, type Span } from '@opentelemetry/api'
import { contextFromStored, messagingAttributes, secondsSince, traceContextOf, type Telemetry } from './telemetry.js'

/** What a send span needs of each pushed job. */
export interface TracedRow {
  id: string
  queue: string
}

/** What a push call needs from its span: the stored context to send, and the end. */
export interface PushTrace {
  /** JSON text of the span's W3C carrier, for jobPushMany's traceContext; undefined when not sampled. */
  traceContext: string | undefined
  end(error?: unknown): void
}

const SEND = { name: 'send', type: 'send' } as const

/**
 * Starts the `send` span of one push call (PRODUCER kind, semantic conventions for messaging): named
 * after the queue when every row goes to one, with the message id for one row and the batch count for
 * several. `linkTo` is a stored trace context to link (a retry of a history entry links its original).
 * `parent` is the span's parent context (default: the active one).
 * Its end records messaging.client.operation.duration and messaging.client.sent.messages.
 */
export function startPushTrace(t: Telemetry, tenantId: string, rows: readonly TracedRow[], linkTo?: unknown, parent?: Context): PushTrace {
  const first = rows[0]
  const queue = first !== undefined && rows.every((r) => r.queue === first.queue) ? first.queue : undefined
  const attributes = messagingAttributes(t, SEND, queue, tenantId)
  const startedAt = performance.now()
  let span: Span | undefined
  let traceContext: string | undefined
  if (t.tracer) {
    const spanAttributes = { ...attributes }
    if (rows.length === 1) spanAttributes['messaging.message.id'] = first!.id
    else spanAttributes['messaging.batch.message_count'] = rows.length
    const links: Link[] = []
    const linked = contextFromStored(linkTo)
    const linkedSpan = linked && trace.getSpanContext(linked)
    if (linkedSpan) links.push({ context: linkedSpan })
    span = t.tracer.startSpan(queue === undefined ? 'send' : `send ${queue}`, { kind: SpanKind.PRODUCER, attributes: spanAttributes, links }, parent ?? context.active())
    const stored = traceContextOf(span.spanContext())
    if (stored) traceContext = JSON.stringify(stored)
  }
  return {
    traceContext,
    end(error?: unknown) {
      const metricAttributes = error === undefined ? attributes : { ...attributes, 'error.type': errorType(error) }
      t.operationDuration?.record(secondsSince(startedAt, performance.now()), metricAttributes)
      if (error === undefined) t.sent?.add(rows.length, attributes)
      if (span) {
        if (error !== undefined) {
          span.setAttribute('error.type', errorType(error))
          span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) })
        }
        span.end()
      }
    },
  }
}

/** A low-cardinality error type: the error's code when it has one, else its class name. */
export function errorType(error: unknown): string {
  if (typeof error === 'object' && error !== null) {
    const code = (error as { code?: unknown }).code
    if (typeof code === 'string' && code !== '') return code
    const name = (error as { name?: unknown }).name
    if (typeof name === 'string' && name !== '') return name
  }
  return '_OTHER'
}

/** Runs a push under its trace when telemetry records, else runs it as it is. */
export async function tracedPush<T>(
  t: Telemetry | undefined,
  tenantId: string,
  rows: readonly TracedRow[],
  push: (traceContext: string | undefined) => Promise<T>,
  linkTo?: unknown,
  parent?: Context,
): Promise<T> {
  if (t === undefined) return push(undefined)
  const tr = startPushTrace(t, tenantId, rows, linkTo, parent)
  try {
    const out = await push(tr.traceContext)
    tr.end()
    return out
  } catch (err) {
    tr.end(err)
    throw err
  }
}
