/**
 * A PostgreSQL array literal for values whose text needs no quoting: UUIDs, integers and fixed words
 * (no commas, braces, quotes, backslashes or spaces), with null as NULL. pg would otherwise escape each
 * element with regular expressions, a measurable cost for arrays of a thousand ids. Never pass caller
 * text: a comma in it would add elements.
 */
export function unquotedArrayLiteral(values: readonly (string | number | null)[]): string {
  let out = '{'
  for (let i = 0; i < values.length; i++) {
    const v = values[i]
    out += (i === 0 ? '' : ',') + (v === null ? 'NULL' : String(v))
  }
  return `${out}}`
}
