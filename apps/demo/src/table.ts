/** A column of a text table: header, how to read a cell, and alignment. */
export interface Column<Row> {
  header: string
  cell: (row: Row) => string | number | null | undefined
  align?: 'left' | 'right'
}

/** Renders rows as an aligned text table with a header and a rule; no dependency, no colours. */
export function renderTable<Row>(rows: readonly Row[], columns: readonly Column<Row>[]): string[] {
  const cells = rows.map((row) => columns.map((c) => String(c.cell(row) ?? '-')))
  const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map((r) => r[i]!.length)))
  const line = (values: string[]) =>
    values.map((v, i) => (columns[i]!.align === 'left' ? v.padEnd(widths[i]!) : v.padStart(widths[i]!))).join('  ').trimEnd()
  return [line(columns.map((c) => c.header)), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)]
}

/**
 * Redraws a block of lines in place on a terminal (cursor up, clear to end); elsewhere (CI logs, pipes)
 * it prints the block only every `plainEveryMs`, so logs stay readable.
 */
export class LiveBlock {
  private drawn = 0
  private lastPlain = 0
  constructor(
    private readonly out: NodeJS.WriteStream = process.stdout,
    private readonly plainEveryMs = 2_000,
  ) {}

  get interactive(): boolean {
    return Boolean(this.out.isTTY) && process.env.CI !== 'true'
  }

  draw(lines: string[], force = false): void {
    if (this.interactive) {
      const up = this.drawn > 0 ? `\x1b[${this.drawn}A\x1b[J` : ''
      this.out.write(`${up}${lines.join('\n')}\n`)
      this.drawn = lines.length
    } else if (force || Date.now() - this.lastPlain >= this.plainEveryMs) {
      this.lastPlain = Date.now()
      this.out.write(`${lines.join('\n')}\n\n`)
    }
  }

  /** Log a line above the live block without breaking it. */
  log(line: string): void {
    if (this.interactive && this.drawn > 0) {
      this.out.write(`\x1b[${this.drawn}A\x1b[J`)
      this.drawn = 0
    }
    this.out.write(`${line}\n`)
  }
}

/** Milliseconds as a short human string: 850 ms, 3.2 s, 4 m 10 s. */
export function formatMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '-'
  if (ms < 1_000) return `${Math.round(ms)} ms`
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)} s`
  return `${Math.floor(ms / 60_000)} m ${Math.round((ms % 60_000) / 1_000)} s`
}
