import { randomBytes } from 'node:crypto'

/**
 * Makes the lease owner each claim writes: the node id, a slash, and a token unique to this claim (a
 * random part per Worker instance plus a counter). Replacing a job by key resets its attempt and a
 * rescue keeps it, so (node, attempt) can repeat for two runs of one job on one node; this string
 * cannot, so a late result or renewal of an old run never matches the new one. The token holds no
 * slash, so the node id is everything before the last one.
 */
export class LeaseOwners {
  private readonly prefix: string
  private counter = 0
  constructor(private readonly nodeId: string) {
    this.prefix = randomBytes(6).toString('base64url')
  }
  next(): string {
    this.counter += 1
    return `${this.nodeId}/${this.prefix}.${this.counter.toString(36)}`
  }
}
