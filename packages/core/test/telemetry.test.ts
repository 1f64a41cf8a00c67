import { SpanKind, TraceFlags, trace, type SpanContext } from '@opentelemetry/api'
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base'
import { describe, expect, it } from 'vitest'
import { contextFromStored, resolveTelemetry, traceContextOf, validateTelemetryOptions } from '../src/telemetry.js'

describe('resolveTelemetry', () => {
  it('is undefined without an SDK, so hot paths test one field', () => {
    expect(resolveTelemetry({}, { name: 'test' })).toBeUndefined()
  })

  it('gives a tracer (and no instruments) for a given tracer provider only', () => {
    const t = resolveTelemetry({ tracerProvider: new BasicTracerProvider() }, { name: 'test' })
    expect(t?.tracer).toBeDefined()
    expect(t?.sent).toBeUndefined()
    expect(t?.tenantAttribute).toBe(false)
  })

  it('refuses options of the wrong shape', () => {
    expect(() => validateTelemetryOptions({ tenantAttribute: 'yes' })).toThrow(/tenantAttribute/)
    expect(() => validateTelemetryOptions({ tracerProvider: {} })).toThrow(/tracerProvider/)
  })
})

describe('stored trace context', () => {
  it('round-trips a span context through the W3C carrier, tracestate included', () => {
    const span = new BasicTracerProvider().getTracer('t').startSpan('s', { kind: SpanKind.PRODUCER })
    const sc = span.spanContext()
    const stored = traceContextOf(sc)!
    expect(stored.traceparent).toBe(`00-${sc.traceId}-${sc.spanId}-01`)
    const back = trace.getSpanContext(contextFromStored({ ...stored, tracestate: 'a=1,b=2' })!) as SpanContext
    expect(back).toMatchObject({ traceId: sc.traceId, spanId: sc.spanId, traceFlags: TraceFlags.SAMPLED, isRemote: true })
    expect(back.traceState?.get('b')).toBe('2')
  })

  it('ignores a missing or malformed carrier instead of failing the job', () => {
    for (const bad of [null, 'x', {}, { traceparent: 'nope' }, { traceparent: `00-${'0'.repeat(32)}-${'1'.repeat(16)}-01` }]) {
      expect(contextFromStored(bad)).toBeUndefined()
    }
  })
})
