export { run, buildProgram } from './program.js'
export { defineConfig, type CliConfig } from './config.js'
export { EXIT } from './errors.js'
