import { html, raw, type Html } from '../html.js'
import { jobHref, type PageContext } from '../context.js'
import type { FlowGraph, FlowGraphNode } from '../queries/flows.js'

/** Nodes drawn on a job's page at most; a larger flow says how many were left out. */
export const FLOW_GRAPH_CAP = 60

const COL = 230
const BOX_W = 190
const BOX_H = 38
const ROW = 48
const PAD = 10

/** A node's state as shown: a live node's job state, else the node's own. */
function shownState(n: FlowGraphNode): string {
  return n.state === 'live' ? (n.jobState ?? 'live') : n.state
}

function cut(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text
}

/**
 * Columns by depth: a node sits one column right of its deepest shown parent (longest path over the
 * shown edges), so every edge points right. A flow is a DAG; the loop still stops after n rounds.
 */
export function layers(g: FlowGraph): Map<string, number> {
  const depth = new Map(g.nodes.map((n) => [n.id, 0]))
  for (let round = 0; round < g.nodes.length; round++) {
    let moved = false
    for (const { parent, child } of g.edges) {
      const d = depth.get(parent)! + 1
      if (d > depth.get(child)!) {
        depth.set(child, d)
        moved = true
      }
    }
    if (!moved) break
  }
  return depth
}

/** The flow section of a job's page: an inline SVG in layers, then a table of nodes with their parents and children. */
export function flowSection(ctx: PageContext, tenantId: string, flowId: string, current: string, g: FlowGraph): Html {
  const depth = layers(g)
  const columns: FlowGraphNode[][] = []
  for (const n of g.nodes) (columns[depth.get(n.id)!] ??= []).push(n)
  const pos = new Map<string, { x: number; y: number }>()
  columns.forEach((col, c) => col.forEach((n, r) => pos.set(n.id, { x: PAD + c * COL, y: PAD + r * ROW })))
  const width = PAD * 2 + Math.max(0, columns.length - 1) * COL + BOX_W
  const height = PAD * 2 + Math.max(...columns.map((c) => c.length)) * ROW - (ROW - BOX_H)
  const byId = new Map(g.nodes.map((n) => [n.id, n]))
  const edges = g.edges.map(({ parent, child }) => {
    const a = pos.get(parent)!
    const b = pos.get(child)!
    const x1 = a.x + BOX_W
    const y1 = a.y + BOX_H / 2
    const x2 = b.x - 4
    const y2 = b.y + BOX_H / 2
    const mid = (x1 + x2) / 2
    return raw(`<path d="M${x1} ${y1} C${mid} ${y1} ${mid} ${y2} ${x2} ${y2}" marker-end="url(#flow-arrow)"/>`)
  })
  const boxes = g.nodes.map((n) => {
    const { x, y } = pos.get(n.id)!
    const state = shownState(n)
    return html`<a href="${jobHref(ctx, tenantId, n.id)}" class="node ${state}${n.id === current ? ' current' : ''}" data-node="${n.id}"><title>${n.ref} (${n.type}, ${n.queue}): ${state}</title>
<rect x="${x}" y="${y}" width="${BOX_W}" height="${BOX_H}" rx="5"/><text x="${x + 8}" y="${y + 15}" font-weight="600">${cut(n.ref, 26)}</text><text x="${x + 8}" y="${y + 30}" class="sub">${cut(`${n.type} · ${n.queue} · ${state}`, 32)}</text></a>`
  })
  const parents = new Map<string, string[]>()
  const children = new Map<string, string[]>()
  for (const { parent, child } of g.edges) {
    ;(parents.get(child) ?? parents.set(child, []).get(child)!).push(parent)
    ;(children.get(parent) ?? children.set(parent, []).get(parent)!).push(child)
  }
  const links = (ids: string[] | undefined) =>
    ids === undefined || ids.length === 0 ? '-' : ids.map((id, i) => html`${i > 0 ? ', ' : ''}<a href="${jobHref(ctx, tenantId, id)}">${byId.get(id)!.ref}</a>`)
  const left = g.total - g.nodes.length
  const order = [...g.nodes].sort((a, b) => depth.get(a.id)! - depth.get(b.id)! || (a.id < b.id ? -1 : 1))
  return html`<h2>Flow <span class="muted"><code>${flowId}</code>: ${g.total} ${g.total === 1 ? 'node' : 'nodes'}</span></h2>
${left > 0 ? html`<p class="muted" id="flow-left-out">Showing ${g.nodes.length} of ${g.total} nodes (this job's parents and children first, then the oldest); ${left} left out, and edges to them are not drawn.</p>` : ''}
<svg class="flow" id="flow-graph" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="flow graph">
<defs><marker id="flow-arrow" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="7" markerHeight="7" orient="auto"><path d="M0 0 L8 4 L0 8 z"/></marker></defs>
<g class="edges">${edges}</g>${boxes}</svg>
<table id="flow-nodes"><tr><th>depth</th><th>ref</th><th>type</th><th>queue</th><th>state</th><th>parents</th><th>children</th></tr>
${order.map((n) => html`<tr${n.id === current ? raw(' class="current"') : raw('')} data-node="${n.id}"><td class="num">${depth.get(n.id)}</td><td><a href="${jobHref(ctx, tenantId, n.id)}">${n.ref}</a>${n.id === current ? html` <span class="muted">(this job)</span>` : ''}</td><td>${n.type}</td><td>${n.queue}</td><td><span class="state ${shownState(n)}">${shownState(n)}</span></td><td>${links(parents.get(n.id))}</td><td>${links(children.get(n.id))}</td></tr>`)}
</table>`
}
