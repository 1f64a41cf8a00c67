import pg from 'pg'
import type { BenchJob, LibAdapter, Names, WorkerOptions } from '../types.js'
import { runLimited, sleep } from './pool-runner.js'

const BATCH = 100
const LOOPS = 2

/**
 * The floor: no library, hand-written batched SQL (a "direct claim"). Claim loops take
 * up to 100 pending jobs with UPDATE ... WHERE id = ANY(ARRAY(SELECT ... FOR UPDATE SKIP LOCKED)),
 * run them, and finish the batch with one DELETE ... RETURNING feeding INSERT INTO history.
 * FIFO, no tenants, no leases renewed, no retries: the least work PostgreSQL needs per job.
 */
export class FloorAdapter implements LibAdapter {
  readonly config = `hand-written SQL: ${LOOPS} claim loops x batch ${BATCH} (UPDATE .. id = ANY(ARRAY(SELECT .. FOR UPDATE SKIP LOCKED))), batch DELETE .. RETURNING -> INSERT history; push = one INSERT, bulk = one INSERT .. unnest; poll 10 ms when idle`
  private pool!: pg.Pool
  private s = ''
  private running = false
  private loops: Promise<void>[] = []

  async setup(adminUrl: string, names: Names): Promise<void> {
    this.pool = new pg.Pool({ connectionString: adminUrl, max: 12, application_name: 'bench-floor' })
    this.pool.on('error', () => {})
    this.s = pg.escapeIdentifier(names.schema)
    const s = this.s
    await this.pool.query(`
      create schema ${s};
      create table ${s}.jobs (
        id bigserial primary key, tenant_id text not null, queue text not null, payload jsonb,
        state text not null default 'pending', run_at timestamptz not null default now(),
        created_at timestamptz not null default now(), locked_at timestamptz
      ) with (fillfactor = 70);
      create index jobs_claim_idx on ${s}.jobs (queue, id) where state = 'pending';
      create table ${s}.history (
        id bigint not null, tenant_id text not null, queue text not null, payload jsonb, state text not null,
        created_at timestamptz not null, finished_at timestamptz not null default now()
      );`)
  }

  async push(job: BenchJob): Promise<void> {
    await this.pool.query(`insert into ${this.s}.jobs (tenant_id, queue, payload) values ($1, 'bench', $2)`, [job.t, job])
  }

  async pushMany(jobs: BenchJob[]): Promise<void> {
    await this.pool.query(
      `insert into ${this.s}.jobs (tenant_id, queue, payload) select t, 'bench', p from unnest($1::text[], $2::jsonb[]) as u(t, p)`,
      [jobs.map((j) => j.t), jobs.map((j) => JSON.stringify(j))],
    )
  }

  async seed(jobs: BenchJob[]): Promise<void> {
    await this.pushMany(jobs)
  }

  async startWorker(opts: WorkerOptions): Promise<void> {
    this.running = true
    const perLoop = Math.max(1, Math.floor(opts.concurrency / LOOPS))
    const s = this.s
    const loop = async (): Promise<void> => {
      while (this.running) {
        const { rows } = await this.pool.query<{ id: string; payload: BenchJob }>(
          `update ${s}.jobs set state = 'running', locked_at = now()
            where id = any(array(select id from ${s}.jobs where queue = 'bench' and state = 'pending'
                                  order by id limit $1 for update skip locked))
           returning id, payload`,
          [BATCH],
        )
        if (rows.length === 0) {
          await sleep(10)
          continue
        }
        await runLimited(rows.map((r) => r.payload), perLoop, opts.handler)
        await this.pool.query(
          `with d as (delete from ${s}.jobs where id = any($1::bigint[]) returning *)
           insert into ${s}.history (id, tenant_id, queue, payload, state, created_at)
           select id, tenant_id, queue, payload, 'completed', created_at from d`,
          [rows.map((r) => r.id)],
        )
      }
    }
    this.loops = Array.from({ length: LOOPS }, loop)
  }

  async stopWorker(): Promise<void> {
    this.running = false
    await Promise.all(this.loops)
  }

  async remaining(): Promise<number> {
    const { rows } = await this.pool.query<{ n: string }>(`select count(*) as n from ${this.s}.jobs`)
    return Number(rows[0]!.n)
  }

  async close(): Promise<void> {
    await this.pool?.end()
  }
}
