import { describe, expect, it } from 'vitest'
import { unquotedArrayLiteral } from '@pgqueue/core/internal'

describe('unquotedArrayLiteral', () => {
  it('joins values into an array literal, null as NULL', () => {
    expect(unquotedArrayLiteral([])).toBe('{}')
    expect(unquotedArrayLiteral([1, null, 3])).toBe('{1,NULL,3}')
    expect(unquotedArrayLiteral(['0190f5e2-7c1a-7000-8000-000000000001', 'completed'])).toBe('{0190f5e2-7c1a-7000-8000-000000000001,completed}')
  })
})
