export * from './embedded.js'
export * from './isolated.js'
