import pg from 'pg'
import { createIsolatedDatabase, type IsolatedDatabase } from '@pgqueue/testing'
import { migrate, uuidv7 } from '@pgqueue/core/internal'

/** A migrated isolated schema plus a small user-role pool. */
export async function setup(label: string): Promise<{ t: IsolatedDatabase; userPool: pg.Pool }> {
  const t = await createIsolatedDatabase(label)
  await migrate(t.adminUrl, t.schemaOptions)
  const userPool = new pg.Pool({ connectionString: t.userUrl, max: 3 })
  // cleanup() terminates this login's sessions; an idle client's error must not fail the run.
  userPool.on('error', () => {})
  return { t, userPool }
}

/** Makes a live job look leased by a worker (what a Worker claim does), as the superuser. */
export async function markRunning(t: IsolatedDatabase, id: string): Promise<void> {
  await t.admin.query(
    `update "${t.schema}".jobs set state = 'running', vt = null, lease_owner = 'w1', lease_expires_at = now() + interval '1 minute',
            attempt = attempt + 1, started_at = now() where id = $1`,
    [id],
  )
}

/** Inserts a finished job straight into history, as a Worker would record it. */
export async function insertHistory(
  t: IsolatedDatabase,
  row: { tenant: string; queue: string; state: 'completed' | 'failed' | 'cancelled'; finishedAt?: Date; scheduleId?: string; id?: string },
): Promise<string> {
  const id = row.id ?? uuidv7()
  await t.admin.query(
    `insert into "${t.schema}".job_history (tenant_id, id, queue, type, state, priority, payload, payload_type, target, attempt, max_attempts,
       schedule_id, created_at, run_at, finished_at, error)
     values ($1, $2, $3, 'send', $4, 7, '\\x6869', 'text/plain', '{"to":"x"}', 3, 3, $5, now(), now(), coalesce($6, now()), '{"message":"boom"}')`,
    [row.tenant, id, row.queue, row.state, row.scheduleId ?? null, row.finishedAt ?? null],
  )
  return id
}

/** Raw rows of a table, as the superuser. */
export async function rows(t: IsolatedDatabase, sqlText: string, params: unknown[] = []): Promise<any[]> {
  return (await t.admin.query(sqlText.replaceAll('S.', `"${t.schema}".`), params)).rows
}
