import { EXIT } from './errors.js'

/** Where a command writes: JSON or text, colour only on a terminal. */
export interface Output {
  json: boolean
  /** stdout is a terminal (progress lines and colour are allowed). */
  tty: boolean
  /** Writes one JSON document (with --json) or runs `text` (without). */
  result(value: unknown, text: () => void): void
  /** A line of text on stdout. */
  line(text?: string): void
  /** A table of rows, columns in the given order; plain and aligned, no colour. */
  table(rows: readonly Record<string, unknown>[], columns: readonly string[]): void
  /** A line on stderr (warnings, progress); never mixed into --json output. */
  note(text: string): void
  /** Colours a word on a terminal (ok: green, warn: yellow, error: red); plain otherwise. */
  level(level: 'ok' | 'warn' | 'error', text: string): string
}

export function createOutput(options: { json: boolean; stdout?: NodeJS.WriteStream; stderr?: NodeJS.WriteStream }): Output {
  const stdout = options.stdout ?? process.stdout
  const stderr = options.stderr ?? process.stderr
  const tty = stdout.isTTY === true
  const colour = tty && !options.json && process.env.NO_COLOR === undefined && process.env.TERM !== 'dumb'
  const codes = { ok: 32, warn: 33, error: 31 } as const
  return {
    json: options.json,
    tty,
    result(value, text) {
      if (options.json) stdout.write(`${JSON.stringify(value, jsonReplacer, 2)}\n`)
      else text()
    },
    line(text = '') {
      stdout.write(`${text}\n`)
    },
    table(rows, columns) {
      if (rows.length === 0) {
        stdout.write('(none)\n')
        return
      }
      const cells = rows.map((r) => columns.map((c) => cell(r[c])))
      const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)))
      const fmt = (row: readonly string[]) => row.map((v, i) => (i === row.length - 1 ? v : v.padEnd(widths[i]!))).join('  ')
      stdout.write(`${fmt(columns)}\n`)
      for (const row of cells) stdout.write(`${fmt(row)}\n`)
    },
    note(text) {
      stderr.write(`${text}\n`)
    },
    level(level, text) {
      return colour ? `\u001b[${codes[level]}m${text}\u001b[39m` : text
    },
  }
}

/** Dates as ISO strings, Buffers as base64, bigints as strings: JSON a script can read back. */
export function jsonReplacer(this: unknown, key: string, value: unknown): unknown {
  const raw = (this as Record<string, unknown>)[key]
  if (raw instanceof Date) return raw.toISOString()
  if (Buffer.isBuffer(raw)) return { base64: raw.toString('base64') }
  if (typeof value === 'bigint') return value.toString()
  return value
}

function cell(value: unknown): string {
  if (value === null || value === undefined) return '-'
  if (value instanceof Date) return value.toISOString()
  if (typeof value === 'object') return JSON.stringify(value, jsonReplacer)
  return String(value)
}

/** Exit code of a command that found things needing attention. */
export function attentionCode(needsAttention: boolean): number {
  return needsAttention ? EXIT.attention : EXIT.ok
}
