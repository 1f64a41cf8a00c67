import { spawn } from 'node:child_process'
import { resolve } from 'node:path'
import { SpanKind, SpanStatusCode } from '@opentelemetry/api'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { migrate } from '@pgqueue/core/internal'
import { Queues, Schedules } from '@pgqueue/producer'
import { ScheduleRunner } from '@pgqueue/schedule-runner'
import { Worker } from '@pgqueue/worker'
import { createIsolatedDatabase, waitFor, type IsolatedDatabase } from '@pgqueue/testing'
import { otelRecorder, type MetricJson, type SpanJson } from './fixtures/otel-recorder.js'

let t: IsolatedDatabase
beforeAll(async () => {
  t = await createIsolatedDatabase('otel')
  await migrate(t.adminUrl, t.schemaOptions)
})
afterAll(async () => {
  await t.cleanup()
})

/** Runs the otel-worker fixture in its own Node process until `jobs` runs are recorded. */
function runWorker(queue: string, jobs: number): Promise<{ spans: SpanJson[]; metrics: MetricJson[] }> {
  return new Promise((done, fail) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', '--conditions=@pgqueue/source', resolve(import.meta.dirname, 'fixtures', 'otel-worker.ts'), t.workerUrl, t.schema, queue, String(jobs)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let err = ''
    proc.stdout.on('data', (d) => (out += d))
    proc.stderr.on('data', (d) => (err += d))
    proc.on('exit', (code) => {
      const line = out.trim().split('\n').pop() ?? ''
      if (code !== 0 || !line.startsWith('{')) fail(new Error(`otel-worker exited ${code}: ${err || out}`))
      else done(JSON.parse(line))
    })
  })
}

const metric = (ms: MetricJson[], name: string) => ms.find((m) => m.name === name)

describe('OpenTelemetry, push in one process and run in another', () => {
  it('makes one trace per push: send, then process and settle in the worker process', async () => {
    const otel = otelRecorder()
    const queues = Queues.create(t.userUrl, { schema: t.schema, telemetry: { tracerProvider: otel.tracerProvider, meterProvider: otel.meterProvider } })
    const acme = queues.withTenant('acme')
    const one = await acme.push({ queue: 'otel', type: 'ok' })
    const many = await acme.pushMany([{ queue: 'otel', type: 'ok' }, { queue: 'otel', type: 'ok' }])
    const failing = await acme.push({ queue: 'otel', type: 'fail', retryPolicy: { type: 'constant', delayMs: 0, maxAttempts: 1 } })

    const sent = otel.spans()
    expect(sent.map((s) => s.name)).toEqual(['send otel', 'send otel', 'send otel'])
    const [sendOne, sendMany, sendFail] = sent as [SpanJson, SpanJson, SpanJson]
    expect(sendOne.kind).toBe(SpanKind.PRODUCER)
    expect(sendOne.attributes).toMatchObject({
      'messaging.system': 'pgqueue',
      'messaging.operation.type': 'send',
      'messaging.destination.name': 'otel',
      'messaging.message.id': one.id,
    })
    // The tenant is an attribute only when asked for.
    expect(sendOne.attributes['messaging.pgqueue.tenant']).toBeUndefined()
    expect(sendMany.attributes['messaging.batch.message_count']).toBe(2)

    // The carrier is stored with the job.
    const { rows } = await t.admin.query(`select id, trace_context from "${t.schema}".jobs order by id`)
    expect(rows.find((r) => r.id === one.id).trace_context).toEqual({ traceparent: `00-${sendOne.traceId}-${sendOne.spanId}-01` })

    const worker = await runWorker('otel', 4)
    const process = worker.spans.filter((s) => s.name === 'process otel')
    expect(process).toHaveLength(4)
    const processOf = (id: string) => process.find((s) => s.attributes['messaging.message.id'] === id)!
    // The run is a child of the push that created it, in the same trace.
    expect(processOf(one.id)).toMatchObject({ traceId: sendOne.traceId, parentSpanId: sendOne.spanId, kind: SpanKind.CONSUMER })
    for (const r of many) expect(processOf(r.id)).toMatchObject({ traceId: sendMany.traceId, parentSpanId: sendMany.spanId })
    expect(processOf(one.id).attributes).toMatchObject({ 'messaging.system': 'pgqueue', 'messaging.operation.type': 'process', 'messaging.pgqueue.tenant': 'acme', 'messaging.pgqueue.job.attempt': 1 })
    const failed = processOf(failing.id)
    expect(failed).toMatchObject({ traceId: sendFail.traceId, status: SpanStatusCode.ERROR })
    expect(failed.attributes['error.type']).toBe('NO_LUCK')

    // Outcomes are recorded in settle spans that name (link or parent) their runs.
    const settles = worker.spans.filter((s) => s.attributes['messaging.operation.type'] === 'settle')
    expect(settles.length).toBeGreaterThan(0)
    const settledRuns = new Set(settles.flatMap((s) => [...s.links.map((l) => l.spanId), ...(s.parentSpanId ? [s.parentSpanId] : [])]))
    for (const p of process) expect(settledRuns.has(p.spanId)).toBe(true)
    expect(settles.every((s) => s.kind === SpanKind.CLIENT)).toBe(true)

    // Metrics on both sides.
    const producerMetrics = await otel.metrics()
    expect(metric(producerMetrics, 'messaging.client.sent.messages')?.points[0]?.value).toBe(4)
    expect(metric(producerMetrics, 'messaging.client.operation.duration')?.unit).toBe('s')
    expect(metric(worker.metrics, 'messaging.client.consumed.messages')?.points.reduce((n, p) => n + Number(p.value), 0)).toBe(4)
    expect(metric(worker.metrics, 'messaging.process.duration')?.unit).toBe('s')
    expect(metric(worker.metrics, 'messaging.client.operation.duration')?.points.some((p) => p.attributes['messaging.operation.type'] === 'settle')).toBe(true)

    // History keeps the carrier; retrying a history entry links its original trace.
    const hist = await t.admin.query(`select trace_context from "${t.schema}".job_history where id = $1`, [failing.id])
    expect(hist.rows[0].trace_context.traceparent).toContain(sendFail.traceId)
    await acme.retry(failing.id)
    const retrySend = otel.spans().at(-1)!
    expect(retrySend.name).toBe('send otel')
    expect(retrySend.links).toEqual([{ traceId: sendFail.traceId, spanId: sendFail.spanId }])
    await queues.close()
  })

  it("stores the flow() call's trace context with every job of the flow", async () => {
    const otel = otelRecorder()
    const queues = Queues.create(t.userUrl, { schema: t.schema, telemetry: { tracerProvider: otel.tracerProvider, meterProvider: otel.meterProvider } })
    const created = await queues.withTenant('acme').flow([
      { ref: 'a', queue: 'otel-flow', type: 'ok', delay: 3_600_000 },
      { ref: 'b', queue: 'otel-flow', type: 'ok', dependsOn: ['a'] },
    ])
    const [send] = otel.spans() as [SpanJson]
    expect(send).toMatchObject({ name: 'send otel-flow', kind: SpanKind.PRODUCER })
    expect(send.attributes['messaging.batch.message_count']).toBe(2)
    const { rows } = await t.admin.query(`select trace_context from "${t.schema}".jobs where id = any($1::uuid[])`, [Object.values(created.jobs)])
    expect(rows.map((r) => r.trace_context)).toEqual([1, 2].map(() => ({ traceparent: `00-${send.traceId}-${send.spanId}-01` })))
    await queues.withTenant('acme').flows.cancel(created.flowId)
    await queues.close()
  })

  it("gives the ScheduleRunner's jobs a send span per tenant, parent of their runs", async () => {
    const schedules = Schedules.create(t.userUrl, { schema: t.schema })
    for (const tenant of ['acme', 'globex']) {
      await schedules.withTenant(tenant).create({ key: 'tick', queue: 'otel-cron', type: 'ok', schedule: { every: 3_600_000 } })
    }
    await schedules.close()
    await t.admin.query(`update "${t.schema}".schedules set next_run_at = now() - interval '1 second' where key = 'tick'`)
    const otel = otelRecorder()
    const runner = ScheduleRunner.create(t.workerUrl, {
      schema: t.schema,
      telemetry: { tracerProvider: otel.tracerProvider, meterProvider: otel.meterProvider, tenantAttribute: true },
    })
    const batch = await runner.runOnce()
    await runner.close()
    expect(batch).toMatchObject({ fired: 2 })
    const sends = otel.spans()
    expect(sends.map((s) => [s.name, s.kind, s.attributes['messaging.pgqueue.tenant']]).sort()).toEqual([
      ['send otel-cron', SpanKind.PRODUCER, 'acme'],
      ['send otel-cron', SpanKind.PRODUCER, 'globex'],
    ])
    const { rows } = await t.admin.query(`select tenant_id, trace_context from "${t.schema}".jobs where queue = 'otel-cron'`)
    for (const r of rows) {
      const send = sends.find((s) => s.attributes['messaging.pgqueue.tenant'] === r.tenant_id)!
      expect(r.trace_context).toEqual({ traceparent: `00-${send.traceId}-${send.spanId}-01` })
    }
    expect(metric(await otel.metrics(), 'messaging.client.sent.messages')?.points.reduce((n, p) => n + Number(p.value), 0)).toBe(2)

    const worker = await runWorker('otel-cron', 2)
    const runs = worker.spans.filter((s) => s.name === 'process otel-cron')
    expect(runs).toHaveLength(2)
    for (const run of runs) {
      const send = sends.find((s) => s.attributes['messaging.pgqueue.tenant'] === run.attributes['messaging.pgqueue.tenant'])!
      expect(run).toMatchObject({ traceId: send.traceId, parentSpanId: send.spanId })
    }
  })

  it('makes ctx.flow.add() a send span under the run, and the added jobs continue its trace', async () => {
    const queues = Queues.create(t.userUrl, { schema: t.schema })
    const split = await queues.withTenant('acme').push({ queue: 'otel-add', type: 'split' })
    await queues.close()
    const otel = otelRecorder()
    let done = 0
    const worker = Worker.create(t.workerUrl, { schema: t.schema, queues: ['otel-add'], telemetry: { tracerProvider: otel.tracerProvider } }, async (job, ctx) => {
      if (job.type === 'split') await ctx.flow.add([{ ref: 'part', queue: 'otel-add', type: 'part' }])
      return null
    })
    worker.on('job:completed', () => void (done += 1))
    await worker.start()
    await waitFor(() => done === 2, { timeoutMs: 10_000 })
    await worker.stop()
    const spans = otel.spans()
    const splitRun = spans.find((s) => s.name === 'process otel-add' && s.attributes['messaging.message.id'] === split.id)!
    const add = spans.find((s) => s.name === 'send otel-add')!
    expect(add).toMatchObject({ kind: SpanKind.PRODUCER, traceId: splitRun.traceId, parentSpanId: splitRun.spanId })
    const partRun = spans.find((s) => s.name === 'process otel-add' && s.attributes['messaging.message.id'] !== split.id)!
    expect(partRun).toMatchObject({ traceId: add.traceId, parentSpanId: add.spanId })
  })

  it('stores nothing and changes no statement when no SDK is registered', async () => {
    const queues = Queues.create(t.userUrl, { schema: t.schema })
    const pushed = await queues.withTenant('acme').push({ queue: 'plain', type: 'ok' })
    const { rows } = await t.admin.query(`select trace_context from "${t.schema}".jobs where id = $1`, [pushed.id])
    expect(rows[0].trace_context).toBeNull()
    await queues.close()
  })

  it('does not carry a trace context over to the next push of the same transaction', async () => {
    const otel = otelRecorder()
    const traced = Queues.create(t.userUrl, { schema: t.schema, telemetry: { tracerProvider: otel.tracerProvider } })
    const plain = Queues.create(t.userUrl, { schema: t.schema })
    const client = await t.admin.connect()
    try {
      await client.query('begin')
      await client.query(`set local role ${t.userRole}`)
      const a = await traced.withTenant('acme').push({ queue: 'tx', type: 'ok' }, { tx: client })
      const b = await plain.withTenant('acme').push({ queue: 'tx', type: 'ok' }, { tx: client })
      await client.query('commit')
      const { rows } = await t.admin.query(`select id, trace_context from "${t.schema}".jobs where queue = 'tx'`)
      expect(rows.find((r) => r.id === a.id).trace_context).not.toBeNull()
      expect(rows.find((r) => r.id === b.id).trace_context).toBeNull()
    } finally {
      client.release()
      await traced.close()
      await plain.close()
    }
  })

  it('ignores a trace context over 1 kB, which could otherwise carry data past the payload limits', async () => {
    const plain = Queues.create(t.userUrl, { schema: t.schema })
    const client = await t.admin.connect()
    try {
      await client.query('begin')
      await client.query(`set local role ${t.userRole}`)
      await client.query(`select set_config('pgqueue.trace_context', $1, true)`, [JSON.stringify({ traceparent: 'x'.repeat(2000) })])
      const pushed = await plain.withTenant('acme').push({ queue: 'big', type: 'ok' }, { tx: client })
      await client.query('commit')
      const { rows } = await t.admin.query(`select trace_context from "${t.schema}".jobs where id = $1`, [pushed.id])
      expect(rows[0].trace_context).toBeNull()
    } finally {
      client.release()
      await plain.close()
    }
  })
})
