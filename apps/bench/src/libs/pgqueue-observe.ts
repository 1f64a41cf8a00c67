// What the pgqueue adapter adds around its Worker for the observability overhead runs, chosen with
// PGQUEUE_BENCH_OBSERVE (a comma list; printed in the configuration line):
//   otel-api    the OpenTelemetry API loaded and asked for a tracer and a meter, no SDK registered: the
//               way most applications run pgqueue (the Worker then records nothing).
//   prometheus  the Prometheus collector registered in a prom-client Registry, observing the Worker and
//               the Scheduler, scraped every SCRAPE_MS as a Prometheus server would.
//   otel-sdk    an OpenTelemetry SDK registered globally (spans sampled and dropped, metrics aggregated
//               by a reader that is never read): the cost of tracing itself, for reference.
import { metrics, trace } from '@opentelemetry/api'
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics'
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base'
import { registerPgQueueMetrics, type PgQueueMetrics } from '@pgqueue/prometheus'
import { Registry } from 'prom-client'

const MODES = ['otel-api', 'prometheus', 'otel-sdk'] as const
type Mode = (typeof MODES)[number]

/** Scrape interval of the prometheus mode: shorter than Prometheus's usual 15 s, so an upper bound. */
const SCRAPE_MS = 5_000

export function observeModes(): Mode[] {
  const raw = (process.env.PGQUEUE_BENCH_OBSERVE ?? '').split(',').map((s) => s.trim()).filter(Boolean)
  for (const m of raw) if (!(MODES as readonly string[]).includes(m)) throw new Error(`PGQUEUE_BENCH_OBSERVE: unknown mode ${m} (${MODES.join(', ')})`)
  return raw as Mode[]
}

class IdleReader extends MetricReader {
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

/** Set up before the Worker and Scheduler are created (the Worker looks telemetry up at start). */
export function observeBefore(modes: Mode[]): void {
  if (modes.includes('otel-api')) {
    trace.getTracer('bench')
    metrics.getMeter('bench')
  }
  if (modes.includes('otel-sdk')) {
    trace.setGlobalTracerProvider(new BasicTracerProvider())
    metrics.setGlobalMeterProvider(new MeterProvider({ readers: [new IdleReader()] }))
  }
}

/** Registers the Prometheus collector for the started components; returns its stop. */
export function observeAfter(modes: Mode[], workerUrl: string, schema: string, worker: unknown, scheduler: unknown): () => Promise<void> {
  if (!modes.includes('prometheus')) return async () => {}
  const registry = new Registry()
  const m: PgQueueMetrics = registerPgQueueMetrics(registry, workerUrl, { schema })
  m.observeWorker(worker as Parameters<PgQueueMetrics['observeWorker']>[0])
  m.observeScheduler(scheduler as Parameters<PgQueueMetrics['observeScheduler']>[0])
  const timer = setInterval(() => void registry.metrics().catch(() => {}), SCRAPE_MS)
  return async () => {
    clearInterval(timer)
    await m.close()
  }
}
