import {
  ProxyTracerProvider,
  ROOT_CONTEXT,
  createNoopMeter,
  createTraceState,
  isSpanContextValid,
  metrics,
  trace,
  type Attributes,
  type Context,
  type Counter,
  type Histogram,
  type Meter,
  type MeterProvider,
  type SpanContext,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api'
import { PgQueueValidationError } from './errors.js'

/**
 * OpenTelemetry options of a component. pgqueue uses `@opentelemetry/api` only: with no SDK registered
 * (and no provider given here) it records nothing and costs one boolean check per job.
 */
export interface TelemetryOptions {
  /** The tracer provider to use instead of the global one (`trace.setGlobalTracerProvider`). */
  tracerProvider?: TracerProvider
  /** The meter provider to use instead of the global one (`metrics.setGlobalMeterProvider`). */
  meterProvider?: MeterProvider
  /**
   * Adds the tenant id as the span and metric attribute `messaging.pgqueue.tenant`. Off by default:
   * tenant ids may be personal data, and as a metric attribute they multiply the series by the number
   * of tenants.
   */
  tenantAttribute?: boolean
}

/** The value of `messaging.system` on every span and metric. */
export const MESSAGING_SYSTEM = 'pgqueue'

/** The trace context stored with a job (jobs.trace_context, job_history.trace_context): a W3C carrier. */
export interface StoredTraceContext {
  traceparent: string
  tracestate?: string
}

/** The instruments and tracer of one component; undefined (see resolveTelemetry) when nothing records. */
export interface Telemetry {
  tracer: Tracer | undefined
  /** messaging.client.operation.duration (s): push (send) and recording outcomes (settle). */
  operationDuration: Histogram | undefined
  /** messaging.process.duration (s): the handler's run. */
  processDuration: Histogram | undefined
  /** messaging.client.sent.messages */
  sent: Counter | undefined
  /** messaging.client.consumed.messages */
  consumed: Counter | undefined
  tenantAttribute: boolean
}

/** Validates a component's `telemetry` option. */
export function validateTelemetryOptions(value: unknown, field = 'telemetry'): TelemetryOptions {
  if (value === undefined) return {}
  if (typeof value !== 'object' || value === null) throw new PgQueueValidationError(field, 'must be an object', value)
  const o = value as TelemetryOptions
  if (o.tenantAttribute !== undefined && typeof o.tenantAttribute !== 'boolean') {
    throw new PgQueueValidationError(`${field}.tenantAttribute`, 'must be a boolean', o.tenantAttribute)
  }
  if (o.tracerProvider !== undefined && typeof o.tracerProvider?.getTracer !== 'function') {
    throw new PgQueueValidationError(`${field}.tracerProvider`, 'must be a TracerProvider', o.tracerProvider)
  }
  if (o.meterProvider !== undefined && typeof o.meterProvider?.getMeter !== 'function') {
    throw new PgQueueValidationError(`${field}.meterProvider`, 'must be a MeterProvider', o.meterProvider)
  }
  return o
}

/** The global tracer provider when an SDK registered one, else undefined (the API's no-op). */
function activeTracerProvider(given: TracerProvider | undefined): TracerProvider | undefined {
  if (given) return given
  const global = trace.getTracerProvider()
  // The API hands out a proxy whose delegate is its no-op provider until an SDK registers: a fresh
  // proxy's delegate is that same no-op singleton, so comparing them tells without private API.
  if (global instanceof ProxyTracerProvider && global.getDelegate() === new ProxyTracerProvider().getDelegate()) return undefined
  return global
}

/**
 * The tracer and instruments of one component, looked up once (at start, or at the first push), or
 * undefined when neither a tracer nor a meter provider records: the hot paths then test one field.
 * An SDK registered after this call is not seen by this component: register it first.
 */
export function resolveTelemetry(options: TelemetryOptions, scope: { name: string; version?: string }): Telemetry | undefined {
  const tp = activeTracerProvider(options.tracerProvider)
  const meter: Meter = (options.meterProvider ?? metrics.getMeterProvider()).getMeter(scope.name, scope.version)
  const metered = meter !== createNoopMeter()
  if (!tp && !metered) return undefined
  return {
    tracer: tp?.getTracer(scope.name, scope.version),
    operationDuration: metered
      ? meter.createHistogram('messaging.client.operation.duration', { unit: 's', description: 'Duration of a messaging operation initiated by a client (push, recording outcomes).' })
      : undefined,
    processDuration: metered
      ? meter.createHistogram('messaging.process.duration', { unit: 's', description: 'Duration of processing a job (the handler).' })
      : undefined,
    sent: metered
      ? meter.createCounter('messaging.client.sent.messages', { unit: '{message}', description: 'Jobs pushed.' })
      : undefined,
    consumed: metered
      ? meter.createCounter('messaging.client.consumed.messages', { unit: '{message}', description: 'Jobs handed to a handler.' })
      : undefined,
    tenantAttribute: options.tenantAttribute === true,
  }
}

/** Common attributes of a span or metric point for one queue (and tenant, when opted in). */
export function messagingAttributes(t: Telemetry, operation: { name: string; type: string }, queue: string | undefined, tenantId: string | undefined): Attributes {
  const a: Attributes = {
    'messaging.system': MESSAGING_SYSTEM,
    'messaging.operation.name': operation.name,
    'messaging.operation.type': operation.type,
  }
  if (queue !== undefined) a['messaging.destination.name'] = queue
  if (t.tenantAttribute && tenantId !== undefined) a['messaging.pgqueue.tenant'] = tenantId
  return a
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/

/** A span context as the W3C carrier stored with a job; undefined for an invalid context. */
export function traceContextOf(sc: SpanContext): StoredTraceContext | undefined {
  if (!isSpanContextValid(sc)) return undefined
  const flags = (sc.traceFlags & 0xff).toString(16).padStart(2, '0')
  const out: StoredTraceContext = { traceparent: `00-${sc.traceId}-${sc.spanId}-${flags}` }
  const state = sc.traceState?.serialize()
  if (state) out.tracestate = state
  return out
}

/**
 * The remote parent context a stored carrier names, or undefined when there is none or it is malformed
 * (a job's trace context is a hint: a bad one never fails the job).
 */
export function contextFromStored(stored: unknown): Context | undefined {
  if (typeof stored !== 'object' || stored === null) return undefined
  const { traceparent, tracestate } = stored as { traceparent?: unknown; tracestate?: unknown }
  if (typeof traceparent !== 'string') return undefined
  const m = TRACEPARENT.exec(traceparent)
  if (!m) return undefined
  const sc: SpanContext = { traceId: m[1]!, spanId: m[2]!, traceFlags: Number.parseInt(m[3]!, 16), isRemote: true }
  if (!isSpanContextValid(sc)) return undefined
  if (typeof tracestate === 'string' && tracestate !== '') sc.traceState = createTraceState(tracestate)
  return trace.setSpanContext(ROOT_CONTEXT, sc)
}

/** Seconds since a performance.now() reading, for the duration histograms. */
export function secondsSince(startMs: number, nowMs: number): number {
  return (nowMs - startMs) / 1000
}
