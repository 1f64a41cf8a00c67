import type { Command } from '@commander-js/extra-typings'
import { action } from '../action.js'
import { openProducer } from '../clients.js'
import { CliError, EXIT } from '../errors.js'

/** `pgqueue flows get|cancel <flowId> --tenant <id>`. */
export function registerFlows(program: Command): void {
  const flows = program.command('flows').description("one tenant's flows (jobs that wait for other jobs): get, cancel")
  flows
    .command('get')
    .description("a flow's jobs with their states and what each waits for")
    .argument('<flowId>', 'the flow id flow() returned')
    .requiredOption('--tenant <id>', 'the tenant')
    .action(
      action(async (ctx, flowId: string, flags: { tenant: string }) => {
        const flow = await openProducer(ctx).queues.withTenant(flags.tenant).flows.get(flowId)
        if (flow === null) throw new CliError(`flow ${flowId} not found for tenant ${flags.tenant}`, EXIT.failed)
        const refOf = new Map(flow.nodes.map((n) => [n.id, n.ref]))
        ctx.out.result(flow, () => {
          ctx.out.table(
            flow.nodes.map((n) => ({
              ref: n.ref, id: n.id, queue: n.queue, type: n.type, state: n.state,
              waitsFor: n.parents.map((p) => refOf.get(p) ?? p).join(' '), finishedAt: n.finishedAt,
            })),
            ['ref', 'id', 'queue', 'type', 'state', 'waitsFor', 'finishedAt'],
          )
          const counts = Object.entries(flow.counts).map(([state, n]) => `${n} ${state}`).join(', ')
          ctx.out.line(`${flow.finished ? 'finished' : 'in progress'}: ${counts}`)
        })
        return EXIT.ok
      }),
    )
  flows
    .command('cancel')
    .description('cancel every unfinished job of a flow (running ones are asked to stop)')
    .argument('<flowId>', 'the flow id')
    .requiredOption('--tenant <id>', 'the tenant')
    .action(
      action(async (ctx, flowId: string, flags: { tenant: string }) => {
        const r = await openProducer(ctx).queues.withTenant(flags.tenant).flows.cancel(flowId)
        ctx.out.result(r, () => ctx.out.line(`${flowId}: ${r.cancelled} cancelled, ${r.cancelRequested} running asked to stop`))
        return EXIT.ok
      }),
    )
}
