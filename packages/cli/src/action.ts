import type { CommandUnknownOpts } from '@commander-js/extra-typings'
import { resolveSettings, type GlobalFlags } from './config.js'
import { CommandContext } from './context.js'
import { createOutput } from './output.js'

/**
 * Wraps a command's handler: resolves settings from the global flags (flags, then environment, then
 * config file), opens the output, runs the handler and always closes its pool. The handler returns the
 * exit code; a thrown error is reported by run() as one line.
 */
export function action<A extends unknown[]>(fn: (ctx: CommandContext, ...args: A) => Promise<number>): (...args: [...A, CommandUnknownOpts]) => Promise<void> {
  return async (...args) => {
    const command = args[args.length - 1] as CommandUnknownOpts
    const flags = command.optsWithGlobals() as GlobalFlags
    const settings = await resolveSettings(flags)
    const ctx = new CommandContext(settings, createOutput({ json: settings.json }))
    try {
      process.exitCode = await fn(ctx, ...(args.slice(0, -1) as A))
    } finally {
      await ctx.close()
    }
  }
}
