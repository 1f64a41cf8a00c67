/**
 * The database refuses what the JavaScript validation refuses, so raw SQL on a `queue_user` connection
 * (or a `push_jobs()` call made by hand) cannot store a row that breaks Stats, Maintenance or a
 * Scheduler round for every tenant. Placeholders as in 0001.
 *
 * Check constraints on every table a tenant writes (jobs through push_jobs(), job_history, queues,
 * schedules, worker_metadata):
 * - timestamps are finite and within the years 1 to 9999 UTC (no 'infinity' / '-infinity');
 * - indexed text (tenant_id, queue, type, key, payload_type) is limited in UTF-8 bytes, matching core's
 *   LIMITS, so the largest index row stays far below B-tree's limit of about 2,700 bytes whatever the
 *   script (a CJK character is 3 bytes);
 * - payload and result: at most 64 MiB (a hard cap above the producer's configurable limit);
 *   JSON columns (target, retry_policy, value, error): a cap on pg_column_size(), the binary value's
 *   size as written (a value kept unchanged by an UPDATE counts as stored, compressed); the limit on
 *   the JSON text itself is checked in JavaScript;
 * - priority within +-1,000,000, max_attempts 1 to 1,000 (retry-policy.ts), every_ms 1 ms to 10 years
 *   (schedule.ts), max_concurrency 1 to 1,000,000.
 * octet_length() and pg_column_size() read a TOASTed value's header only, so the checks cost a few
 * comparisons per written row (PostgreSQL evaluates every check constraint on every UPDATE of a row).
 *
 * Cost on a big installation: adding a check constraint reads every row of its table (job_history:
 * every partition) while holding the table's ACCESS EXCLUSIVE lock, so pushes, claims and history
 * inserts wait for the whole migration; the time grows with the size of the live table and of the
 * history kept. All constraints of a table are added in one ALTER TABLE, which reads the table once.
 * Adding them NOT VALID and validating them afterwards would not shorten the lock here: a migration is
 * one transaction, so the ACCESS EXCLUSIVE lock of ADD CONSTRAINT would be held through every
 * VALIDATE anyway, and each VALIDATE reads the table again (one scan per constraint instead of one per
 * table). Plan the upgrade like a table rewrite: at a quiet time, after Maintenance's retention has
 * trimmed history. If an existing row breaks a rule (a row written by raw SQL), the migration fails
 * naming the constraint and changes nothing; fix or delete that row and run initialize() again.
 *
 * Coordination locks only pgqueue's roles can take: `locks` holds one row per coordinated task.
 * Maintenance and createHistoryPartition() lock their row with SELECT ... FOR UPDATE (SKIP LOCKED when
 * a busy instance should skip), which needs UPDATE on this table: nobody but the owner has it. Advisory
 * locks, which any login may take on any key, are no longer used for these tasks.
 */

const FIRST = `'0001-01-01 00:00:00+00'`
const LAST = `'9999-12-31 23:59:59.999999+00'`
const MIB = 1024 * 1024

/** One named check constraint, as an ADD CONSTRAINT clause. */
const check = (table: string, name: string, expr: string) => `add constraint ${name} check (${expr})`
const bytes = (table: string, col: string, min: number, max: number) => check(table, `${table}_${col}_bytes`, `octet_length(${col}) between ${min} and ${max}`)
const stored = (table: string, col: string, max: number) => check(table, `${table}_${col}_size`, `pg_column_size(${col}) <= ${max}`)
const range = (table: string, col: string, min: number, max: number) => check(table, `${table}_${col}_range`, `${col} between ${min} and ${max}`)
const time = (table: string, col: string) => check(table, `${table}_${col}_range`, `${col} between ${FIRST} and ${LAST}`)
/** All constraints of one table in one statement, so the table is read once to check them. */
const alter = (table: string, clauses: string[]) => `alter table :schema.${table}\n  ${clauses.join(',\n  ')};\n`

export default /* sql */ `
${alter('jobs', [
  bytes('jobs', 'tenant_id', 1, 256), bytes('jobs', 'queue', 1, 128), bytes('jobs', 'type', 1, 128), bytes('jobs', 'key', 1, 512),
  bytes('jobs', 'payload_type', 1, 255), check('jobs', 'jobs_payload_bytes', `octet_length(payload) <= ${64 * MIB}`),
  stored('jobs', 'target', 8 * MIB), stored('jobs', 'retry_policy', 8192),
  range('jobs', 'priority', -1_000_000, 1_000_000), range('jobs', 'max_attempts', 1, 1000),
  time('jobs', 'run_at'), time('jobs', 'created_at'), time('jobs', 'updated_at'), time('jobs', 'started_at'), time('jobs', 'lease_expires_at'),
])}
${alter('job_history', [
  bytes('job_history', 'tenant_id', 1, 256), bytes('job_history', 'queue', 1, 128), bytes('job_history', 'type', 1, 128),
  bytes('job_history', 'key', 1, 512), bytes('job_history', 'payload_type', 1, 255), bytes('job_history', 'result_type', 1, 255),
  check('job_history', 'job_history_payload_bytes', `octet_length(payload) <= ${64 * MIB}`),
  check('job_history', 'job_history_result_bytes', `octet_length(result) <= ${64 * MIB}`),
  stored('job_history', 'target', 8 * MIB), stored('job_history', 'error', 8 * MIB),
  range('job_history', 'priority', -1_000_000, 1_000_000), range('job_history', 'max_attempts', 1, 1000),
  time('job_history', 'created_at'), time('job_history', 'run_at'), time('job_history', 'started_at'), time('job_history', 'finished_at'),
])}
${alter('queues', [
  bytes('queues', 'tenant_id', 1, 256), bytes('queues', 'queue', 1, 128), bytes('queues', 'display_name', 1, 256),
  stored('queues', 'retry_policy', 8192), range('queues', 'max_concurrency', 1, 1_000_000),
  time('queues', 'created_at'), time('queues', 'updated_at'),
])}
${alter('schedules', [
  bytes('schedules', 'tenant_id', 1, 256), bytes('schedules', 'key', 1, 512), bytes('schedules', 'queue', 1, 128),
  bytes('schedules', 'type', 1, 128), bytes('schedules', 'payload_type', 1, 255), bytes('schedules', 'cron', 1, 1024),
  bytes('schedules', 'timezone', 1, 128), check('schedules', 'schedules_payload_bytes', `octet_length(payload) <= ${64 * MIB}`),
  stored('schedules', 'target', 8 * MIB), stored('schedules', 'retry_policy', 8192),
  range('schedules', 'priority', -1_000_000, 1_000_000), range('schedules', 'every_ms', 1, 10 * 366 * 86_400_000),
  time('schedules', 'anchor_at'), time('schedules', 'next_run_at'), time('schedules', 'last_run_at'),
  time('schedules', 'created_at'), time('schedules', 'updated_at'),
])}
${alter('worker_metadata', [
  bytes('worker_metadata', 'tenant_id', 1, 256), bytes('worker_metadata', 'key', 1, 512),
  stored('worker_metadata', 'value', 8 * MIB), time('worker_metadata', 'updated_at'),
])}
-- One row per coordinated task; a transaction holds a task by locking its row. No grants: only the
-- owner (the admin that runs Maintenance and migrations) may lock these rows.
create table :schema.locks (
  name text primary key
);
insert into :schema.locks (name) values
  ('partitions'), ('maintenance:rollup'), ('maintenance:liveCounts'), ('maintenance:nodes'), ('maintenance:leases');
`
