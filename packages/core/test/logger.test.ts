import { Writable } from 'node:stream'
import { pino } from 'pino'
import { describe, expect, it, vi } from 'vitest'
import { childLogger, silentLogger, warningsLogger, type Logger } from '../src/internal.js'

function capture(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = []
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(JSON.parse(String(chunk)))
      done()
    },
  })
  return { logger: pino({ level: 'debug' }, stream), lines }
}

describe('Logger', () => {
  it('accepts pino as it is, fields first and message second', async () => {
    const { logger, lines } = capture()
    const l: Logger = logger
    l.warn({ queue: 'emails', jobId: 'j1', nodeId: 'w1' }, 'job failed')
    await new Promise((r) => setImmediate(r))
    expect(lines[0]).toMatchObject({ level: 40, queue: 'emails', jobId: 'j1', nodeId: 'w1', msg: 'job failed' })
  })

  it('childLogger() uses pino child bindings', async () => {
    const { logger, lines } = capture()
    childLogger(logger, { component: 'worker', nodeId: 'w1' }).info({ jobId: 'j2' }, 'ran')
    await new Promise((r) => setImmediate(r))
    expect(lines[0]).toMatchObject({ component: 'worker', nodeId: 'w1', jobId: 'j2', msg: 'ran' })
  })

  it('childLogger() merges bindings for a logger without child()', () => {
    const seen: unknown[][] = []
    const plain: Logger = { ...silentLogger, warn: (fields, message) => seen.push([fields, message]) }
    const child = childLogger(childLogger(plain, { nodeId: 'w1' }), { queue: 'q' })
    child.warn({ jobId: 'j3' }, 'late')
    expect(seen).toEqual([[{ nodeId: 'w1', queue: 'q', jobId: 'j3' }, 'late']])
  })

  it('console fits, and warningsLogger prints the message then its fields', () => {
    const asLogger: Logger = console
    expect(typeof asLogger.warn).toBe('function')
    const spy = vi.spyOn(console, 'warn').mockImplementation(() => {})
    try {
      warningsLogger.warn({ queue: 'q' }, 'slow')
      warningsLogger.warn({}, 'bare')
      expect(spy.mock.calls).toEqual([['pgqueue: slow', { queue: 'q' }], ['pgqueue: bare']])
    } finally {
      spy.mockRestore()
    }
  })
})
