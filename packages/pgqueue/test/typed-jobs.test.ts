import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createIsolatedDatabase, waitFor, type IsolatedDatabase } from '@pgqueue/testing'
import pgqueue, { Worker, Scheduler, type TenantQueues } from 'pgqueue'

// A typed job map, as an application declares it (once, anywhere in its program). The names are
// unusual on purpose: this declaration applies to every file of this package's TypeScript project.
declare global {
  namespace PgQueue {
    interface JobTypes {
      'typed-test.resize': { payload: { url: string; width: number }; result: { bytes: number } }
      'typed-test.ping': { payload: string }
    }
  }
}

let t: IsolatedDatabase
beforeAll(async () => {
  t = await createIsolatedDatabase('typed')
  await pgqueue.initialize(t.adminUrl, t.schemaOptions)
})
afterAll(async () => {
  await t.cleanup()
})

describe('typed job maps (PgQueue.JobTypes)', () => {
  it('checks payloads, data and results by type at compile time and runs as usual', async () => {
    const client = await pgqueue.quickstart(t.userUrl, { schema: t.schema })
    const seen: number[] = []
    const worker = Worker.create(t.workerUrl, { schema: t.schema, queues: ['img'] }, {
      'typed-test.resize': async (job) => {
        seen.push(job.data.width) // data is { url: string; width: number }
        return { bytes: job.data.url.length * job.data.width }
      },
      'typed-test.ping': (job) => {
        const text: string = job.data
        return text.length
      },
      // A type not in the map keeps the untyped signature: data is unknown.
      'typed-test.other': (job) => ({ seen: typeof job.data }),
    })
    const scheduler = Scheduler.create(t.workerUrl, { schema: t.schema })
    try {
      await worker.start()
      await scheduler.start()
      const acme = client.queues.withTenant('acme')
      const r = await acme.push({ queue: 'img', type: 'typed-test.resize', payload: { url: 'https://x/a.png', width: 3 } })
      await acme.pushMany([
        { queue: 'img', type: 'typed-test.ping', payload: 'hello' },
        { queue: 'img', type: 'typed-test.other', payload: [1, 2] },
      ])
      const done = await waitFor(async () => {
        const job = await acme.get(r.id)
        return job?.kind === 'history' ? job : undefined
      }, { timeoutMs: 15_000, message: 'the typed job in history' })
      expect(done!.state).toBe('completed')
      expect(done!.resultData).toEqual({ bytes: 'https://x/a.png'.length * 3 })
      expect(seen).toEqual([3])
    } finally {
      await worker.stop()
      await scheduler.stop()
      await client.close()
    }

  })
})

// Compile-time checks, never called: each marked line must fail to type-check (tsc runs over this file
// in CI, and an @ts-expect-error that is not needed is an error itself).
export async function typedJobsCompileChecks(q: TenantQueues, url: string): Promise<void> {
  // @ts-expect-error width must be a number
  await q.push({ queue: 'img', type: 'typed-test.resize', payload: { url: 'u', width: '3' } })
  // @ts-expect-error a registered type needs its payload
  await q.push({ queue: 'img', type: 'typed-test.resize' })
  // @ts-expect-error checked inside pushMany too
  await q.pushMany([{ queue: 'img', type: 'typed-test.ping', payload: 42 }])
  Worker.create(url, {}, {
    // @ts-expect-error the result must match the registered one
    'typed-test.resize': async () => ({ size: 1 }),
  })
  Worker.create(url, {}, {
    // @ts-expect-error data is the registered payload, not a number
    'typed-test.ping': (job) => { const n: number = job.data; return n },
  })
}
