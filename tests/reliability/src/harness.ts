import { appendFileSync } from 'node:fs'
import pg from 'pg'
import { uuidv7 } from '@pgqueue/core/internal'
import { tenantToken } from '@pgqueue/testing'

/** Flags that gate disruptive or long tests. */
export const FAULT_TESTS = process.env.PGQUEUE_FAULT_TESTS === '1'
export const LONG_TESTS = process.env.PGQUEUE_LONG_TESTS === '1'

/** Where every test file appends its closing figures (attempts, lost, duplicates...), one JSON line each. */
export const FIGURES_FILE = process.env.PGQUEUE_RELIABILITY_FIGURES ?? '/tmp/pgqueue-reliability-figures.jsonl'

/** Records a figure for the report: printed and appended to FIGURES_FILE. */
export function reportFigure(name: string, value: unknown): void {
  const line = JSON.stringify({ at: new Date().toISOString(), name, value })
  process.stdout.write(`[reliability] ${line}\n`)
  try {
    appendFileSync(FIGURES_FILE, `${line}\n`)
  } catch {
    // a read-only /tmp must not fail a test
  }
}

/** Counts attack attempts per category, for the report. */
export class AttemptCounter {
  readonly counts = new Map<string, number>()
  total = 0
  add(category: string, n = 1): void {
    this.counts.set(category, (this.counts.get(category) ?? 0) + n)
    this.total += n
  }
  toJSON(): Record<string, number> {
    return { total: this.total, ...Object.fromEntries([...this.counts].sort()) }
  }
}

/** The SQLSTATE of a failed query, or 'ok' when it succeeded. */
export async function sqlState(p: Promise<unknown>): Promise<string> {
  try {
    await p
    return 'ok'
  } catch (err) {
    return String((err as { code?: unknown }).code ?? (err as Error).message)
  }
}

export interface RawPushItem {
  id?: string
  queue: string
  type?: string
  key?: string | null
  payload?: Buffer | null
  payloadType?: string | null
  target?: unknown
  priority?: number
  runAt?: Date | null
  maxAttempts?: number | null
}

/** Calls push_jobs() directly (the one entry point of the user role for jobs), signed with the test file's tenant secret. */
export async function rawPush(client: pg.Pool | pg.ClientBase, schema: string, tenant: string, items: RawPushItem[]) {
  const col = <T>(f: (i: RawPushItem) => T) => items.map(f)
  const { rows } = await client.query(
    `select * from "${schema}".push_jobs($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb[], $10, $11, $12, $13, $14, $15)`,
    [
      tenant,
      tenant === '' ? '' : tenantToken(tenant),
      col((i) => i.id ?? uuidv7()),
      col((i) => i.queue),
      col((i) => i.type ?? 'work'),
      col((i) => i.key ?? null),
      col((i) => i.payload ?? null),
      col((i) => i.payloadType ?? null),
      col((i) => (i.target === undefined ? null : JSON.stringify(i.target))),
      col((i) => i.priority ?? 0),
      col((i) => i.runAt ?? null),
      col((i) => i.maxAttempts ?? 3),
      col(() => null),
      col(() => null),
      col(() => null),
    ],
  )
  return rows as Array<{ id: string; queue: string; key: string | null; state: string; outcome: string }>
}

/** Replaces `S.` in a statement with the quoted schema. */
export function inSchema(schema: string): (text: string) => string {
  return (text) => text.replaceAll('S.', `"${schema}".`)
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))
