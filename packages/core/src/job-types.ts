/**
 * Typed job maps. An application names its job types once, by declaration merging into a global
 * interface, and TypeScript then checks the payload of every push of those types and the `data` and
 * result of their handlers:
 *
 *   declare global {
 *     namespace PgQueue {
 *       interface JobTypes {
 *         'send-email': { payload: { to: string; subject: string }; result: { messageId: string } }
 *       }
 *     }
 *   }
 *
 * Global rather than a module augmentation, so it works whichever pgqueue package the program imports
 * (an API service may have only @pgqueue/producer, a job service only @pgqueue/worker). Types not named
 * there keep the untyped API. Types only: nothing is checked at run time beyond the usual validation.
 */
declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace PgQueue {
    /** Job type name -> `{ payload: P; result?: R }`. Empty until an application adds to it. */
    // eslint-disable-next-line @typescript-eslint/no-empty-interface
    interface JobTypes {}
  }
}

/** The job types named in PgQueue.JobTypes. */
export type RegisteredJobType = keyof PgQueue.JobTypes & string

/** The payload a job of type `T` carries: as registered, else `unknown`. */
export type JobPayload<T extends string> = T extends RegisteredJobType
  ? PgQueue.JobTypes[T] extends { payload: infer P } ? P : unknown
  : unknown

/** What a handler of type `T` returns: as registered, else `unknown`. */
export type JobResult<T extends string> = T extends RegisteredJobType
  ? PgQueue.JobTypes[T] extends { result: infer R } ? R : unknown
  : unknown
