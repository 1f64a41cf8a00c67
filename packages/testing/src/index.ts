export * from './embedded.js'
export * from './isolated.js'
export * from './fixtures.js'
export * from './tcp-proxy.js'
