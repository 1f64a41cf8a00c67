import { defineConfig } from 'tsdown'

export default defineConfig({
  entry: ['src/index.ts', 'src/queues.ts', 'src/schedules.ts', 'src/maintenance.ts', 'src/stats.ts'],
  format: 'esm',
  dts: true,
  fixedExtension: false,
  clean: true,
})
