export { createDashboard, type Dashboard } from './dashboard.js'
export type { DashboardAction, DashboardOptions, ResolvedDashboardOptions } from './options.js'
export { toNodeHandler, type FetchHandler } from './node.js'
