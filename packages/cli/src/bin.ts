#!/usr/bin/env node
import { run } from './program.js'

process.exitCode = await run(process.argv)
// A component or a pool that failed to close must not keep a finished command alive.
setTimeout(() => process.exit(), 2_000).unref()
