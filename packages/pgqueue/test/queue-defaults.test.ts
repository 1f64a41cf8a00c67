import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import pg from 'pg'
import { createIsolatedDatabase, waitFor, type IsolatedDatabase } from '@pgqueue/testing'
import pgqueue, { PgQueueValidationError, queueDefaultDelete, queueDefaultList, queueDefaultSet, Worker } from 'pgqueue'

let t: IsolatedDatabase
let workerPool: pg.Pool
let client: Awaited<ReturnType<typeof pgqueue.quickstart>>

beforeAll(async () => {
  t = await createIsolatedDatabase('queue_defaults')
  await pgqueue.initialize(t.adminUrl, t.schemaOptions)
  workerPool = new pg.Pool({ connectionString: t.workerUrl, max: 2 })
  client = await pgqueue.quickstart(t.userUrl, { schema: t.schema })
})
afterAll(async () => {
  await client?.close()
  await workerPool?.end()
  await t.cleanup()
})

const maxAttemptsOf = async (id: string) =>
  (await t.admin.query(`select max_attempts from "${t.schema}".jobs where id = $1`, [id])).rows[0]?.max_attempts

describe('queue defaults (operator, every tenant)', () => {
  it('apply when neither the job nor the tenant names a policy; the job and the tenant win', async () => {
    await queueDefaultSet(workerPool, { schema: t.schema, queue: 'mail', retryPolicy: { type: 'constant', delayMs: 100, maxAttempts: 2 } })
    const acme = client.queues.withTenant('acme')
    const beta = client.queues.withTenant('beta')
    await beta.configureQueue('mail', { retryPolicy: { type: 'constant', delayMs: 100, maxAttempts: 9 } })

    expect(await maxAttemptsOf((await acme.push({ queue: 'mail', type: 'send', delay: 60_000 })).id)).toBe(2)
    expect(await maxAttemptsOf((await beta.push({ queue: 'mail', type: 'send', delay: 60_000 })).id)).toBe(9)
    expect(await maxAttemptsOf((await acme.push({ queue: 'mail', type: 'send', delay: 60_000, retryPolicy: { type: 'constant', delayMs: 1, maxAttempts: 4 } })).id)).toBe(4)
    expect(await maxAttemptsOf((await acme.push({ queue: 'other', type: 'send', delay: 60_000 })).id)).toBe(5)
    expect(await queueDefaultList(workerPool, { schema: t.schema })).toEqual([
      { queue: 'mail', retryPolicy: { type: 'constant', delayMs: 100, maxAttempts: 2 } },
    ])
  })

  it('the Worker retries with the default delay and fails the job after its attempts', async () => {
    await queueDefaultSet(workerPool, { schema: t.schema, queue: 'flaky', retryPolicy: { type: 'constant', delayMs: 60_000, maxAttempts: 3 } })
    const job = await client.queues.withTenant('acme').push({ queue: 'flaky', type: 'send' })
    const failed: { willRetry: boolean; retryAt?: Date }[] = []
    const w = Worker.create(t.workerUrl, { schema: t.schema, queues: ['flaky'], pollMs: 50 }, async () => {
      throw new Error('down')
    })
    w.on('job:failed', (e) => failed.push(e))
    await w.start()
    try {
      await waitFor(() => failed.length === 1, { timeoutMs: 15_000, message: 'first failure' })
    } finally {
      await w.stop()
    }
    expect(failed[0]!.willRetry).toBe(true)
    // The default's 60 s delay, not DEFAULT_RETRY_POLICY's 5 s.
    const wait = failed[0]!.retryAt!.getTime() - Date.now()
    expect(wait).toBeGreaterThan(30_000)
    expect(await maxAttemptsOf(job.id)).toBe(3)
  })

  it('refuses bad input, and a tenant can neither read nor write defaults', async () => {
    await expect(queueDefaultSet(workerPool, { schema: t.schema, queue: 'mail', retryPolicy: { type: 'constant', delayMs: -1, maxAttempts: 2 } }))
      .rejects.toBeInstanceOf(PgQueueValidationError)
    await expect(queueDefaultSet(workerPool, { schema: t.schema, queue: '', retryPolicy: { type: 'constant', delayMs: 1, maxAttempts: 2 } }))
      .rejects.toBeInstanceOf(PgQueueValidationError)
    expect(await queueDefaultList(workerPool, { schema: t.schema })).toHaveLength(2)
    const user = new pg.Client({ connectionString: t.userUrl })
    await user.connect()
    try {
      await expect(user.query(`select * from "${t.schema}".queue_defaults`)).rejects.toThrow(/permission denied/)
      await expect(queueDefaultSet(user, { schema: t.schema, queue: 'mail', retryPolicy: { type: 'constant', delayMs: 1, maxAttempts: 1000 } }))
        .rejects.toThrow(/permission denied/)
    } finally {
      await user.end()
    }
    expect(await queueDefaultDelete(workerPool, { schema: t.schema, queue: 'mail' })).toBe(true)
    expect(await queueDefaultDelete(workerPool, { schema: t.schema, queue: 'mail' })).toBe(false)
  })
})
