/**
 * Where the plain claim of a queue starts reading jobs_claim_idx (issue 19, a long transaction on the
 * same database). While another session holds an old snapshot open, the index entries of every job
 * claimed since then stay at the front of the index (their pending versions are still visible to that
 * snapshot, so nothing can remove them), and a claim from the front visits each one: the claim grew
 * slower with every job run. So the claim reads from a floor: the lowest vt this Worker claimed
 * LAG_MS ago or more. The head of a queue only moves up, except for a job stamped from a head read
 * more than LAG_MS before its push committed (a push in a long transaction), a job that comes back to
 * pending with its old vt (a release, a rescued lease, a claim rolled back) and a joining tenant
 * stamped at the head of a row another Worker was claiming at that moment. Such a job may sit below the
 * floor, so every SWEEP_MS the claim reads from the front again: it waits that long at most, and is
 * then the first claimed. Without an old snapshot the entries at the front are removed as claims pass
 * them, and the floor changes nothing but that bounded wait of those rare jobs.
 */
const LAG_MS = 500
const SWEEP_MS = 1_000
/** vt as the database returns it (a bigint as text, never negative). */
type Vt = string

interface QueueFloor {
  /** (time, lowest vt claimed) of recent claims, oldest first; only the newest older than LAG_MS is kept. */
  samples: { at: number; vt: Vt }[]
  sweptAt: number
}

export class ClaimFloors {
  private readonly queues = new Map<string, QueueFloor>()

  /** The vt the next plain claim of `queue` starts from, or undefined: read from the front (a sweep). */
  from(queue: string, now: number): Vt | undefined {
    let q = this.queues.get(queue)
    if (!q) {
      if (this.queues.size > 10_000) this.queues.clear()
      this.queues.set(queue, (q = { samples: [], sweptAt: now }))
      return undefined
    }
    if (now - q.sweptAt >= SWEEP_MS) {
      q.sweptAt = now
      return undefined
    }
    let k = -1
    for (let i = 0; i < q.samples.length && now - q.samples[i]!.at >= LAG_MS; i++) k = i
    if (k > 0) q.samples.splice(0, k)
    return k >= 0 ? q.samples[0]!.vt : undefined
  }

  /** Records a plain claim made at `at` whose lowest vt was `vt`. */
  claimed(queue: string, at: number, vt: Vt): void {
    const q = this.queues.get(queue)
    if (!q) return
    // A job below an earlier claim's lowest (pushed from an older head, or back to pending) lowers the
    // samples to it: jobs beside it are read from the floor too.
    for (const sm of q.samples) if (compareVt(vt, sm.vt) < 0) sm.vt = vt
    if (q.samples.length < 1_000) q.samples.push({ at, vt })
  }

  /** The queue is claimed another way (the priority claim): its samples no longer bound its head. */
  forget(queue: string): void {
    this.queues.delete(queue)
  }
}

/** vt values are non-negative bigints as text: compare lengths first, then the digits. */
export function compareVt(a: Vt, b: Vt): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0)
}
