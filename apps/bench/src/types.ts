/** What every job carries: a sequence number and the tenant it belongs to (peers keep it in the payload). */
export interface BenchJob {
  /** Sequence number, unique within a case run. */
  s: number
  /** Tenant id. Peers have no tenants: for them it is only a payload field in one shared queue. */
  t: string
  /** pgqueue-only cases: the queue (default the bench queue) and the priority. */
  q?: string
  p?: number
}

/** A node of a flow case. */
export interface BenchFlowNode {
  ref: string
  dependsOn?: string[]
  job: BenchJob
}

export type Handler = (job: BenchJob) => Promise<void> | void

export interface WorkerOptions {
  /** Jobs in flight at once in the one worker process. */
  concurrency: number
  handler: Handler
  /** The latency case: turn on whatever the library documents for fast pickup (LISTEN/NOTIFY). */
  lowLatency?: boolean
  /** pgqueue-only cases: serve every queue instead of the bench queue. */
  everyQueue?: boolean
}

/** Names the parent chose for this child, so it can clean up even after a crash or a timeout. */
export interface Names {
  schema: string
  /** Prefix for any roles the adapter creates (pgqueue only). */
  rolePrefix: string
}

/** One library behind a common face. Every method throws when the library cannot do it. */
export interface LibAdapter {
  /** The configuration used, in words, printed with the results. */
  readonly config: string
  setup(adminUrl: string, names: Names, opts: { lowLatency?: boolean }): Promise<void>
  push(job: BenchJob): Promise<void>
  /** One library call for the whole array (jobs of several tenants are grouped per tenant where the API requires it). */
  pushMany(jobs: BenchJob[]): Promise<void>
  /** Untimed pre-fill in the quickest way the library's API allows (one insert where it has a bulk
   *  one); prefill() falls back to pushMany in chunks of 1,000 without it. */
  seed?(jobs: BenchJob[]): Promise<void>
  startWorker(opts: WorkerOptions): Promise<void>
  stopWorker(): Promise<void>
  /** Jobs not finished yet (live rows), counted on the database. */
  remaining(): Promise<number>
  /** Flow cases: one DAG in one call, each node a bench job with a ref and the refs it waits for. */
  flow?(tenant: string, nodes: BenchFlowNode[]): Promise<void>
  /** Flow cases: per released child, ms from its last parent's finish (as recorded) to its start, database clock. */
  flowReleaseGaps?(): Promise<number[]>
  /** pgqueue-only cases: an operator weight for a tenant (throws where the library has none). */
  setWeight?(tenant: string, weight: number): Promise<void>
  /** pgqueue-only cases: an operator rate limit for a tenant in the bench queue (tokens per second, burst). */
  setRateLimit?(tenant: string, ratePerSec: number, capacity: number): Promise<void>
  /** Closes connections; the schema itself is dropped by the parent (see cleanup.ts). */
  close(): Promise<void>
}

/** What a case reports back to the parent. */
export interface CaseResult {
  /** The headline number (jobs/s, or ms for latency and fairness). */
  value: number
  unit: string
  /** Secondary figures (p95, p99, A jobs before B, ...). */
  extra?: Record<string, number | string | boolean | null>
}

export type LibName = 'pgqueue' | 'pgqueue-node20' | 'pg-boss' | 'graphile-worker' | 'floor'

/** Prefix of the one stdout line a child prints with its result. */
export const RESULT_MARK = '@@bench-result '
