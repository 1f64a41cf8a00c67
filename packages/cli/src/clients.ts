import { createProducer, type Producer } from '@pgqueue/producer'
import { Stats } from '@pgqueue/stats'
import type { CommandContext } from './context.js'
import { usageError } from './errors.js'

/** Queues and Schedules over the command's pool (user role with the tenant secret, or the worker role). */
export function openProducer(ctx: CommandContext): Producer {
  return createProducer(ctx.pool, {
    ...(ctx.settings.schema !== undefined ? { schema: ctx.settings.schema } : {}),
    ...(ctx.settings.tenantSecret !== undefined ? { tenantSecret: ctx.settings.tenantSecret } : {}),
    logger: ctx.logger,
  })
}

/** Stats over the command's pool. */
export function openStats(ctx: CommandContext): Stats {
  return Stats.create(ctx.pool, { ...ctx.names, ...(ctx.settings.tenantSecret !== undefined ? { tenantSecret: ctx.settings.tenantSecret } : {}) })
}

/** A whole number of milliseconds from a flag ('15m', '2h', '30s', '1d' or plain ms). */
export function parseDuration(value: string, flag: string): number {
  const m = /^(\d+)(ms|s|m|h|d)?$/.exec(value.trim())
  if (!m) throw usageError(`${flag}: expected a duration such as 500ms, 30s, 15m, 2h or 1d, got ${JSON.stringify(value)}`)
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 'ms') as 'ms']
  return Number(m[1]) * unit
}

/** A positive integer from a flag. */
export function parsePositiveInt(value: string, flag: string): number {
  const n = Number(value)
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) throw usageError(`${flag}: expected a positive integer, got ${JSON.stringify(value)}`)
  return n
}
