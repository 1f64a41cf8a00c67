import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'

/**
 * CSRF protection of the action forms: a token that is an HMAC of the scope (the tenant, or the operator)
 * under a secret of this dashboard, checked on every POST together with the request's origin. A page of
 * another site can neither read the token nor send a same-origin request.
 */
export class CsrfTokens {
  private readonly secret: Buffer

  constructor(secret: string | undefined) {
    this.secret = secret === undefined ? randomBytes(32) : Buffer.from(secret, 'utf8')
  }

  /** The token forms of this scope carry. */
  token(scope: string): string {
    return createHmac('sha256', this.secret).update(`csrf\u0000${scope}`).digest('base64url')
  }

  /** True when `token` is this scope's. */
  check(scope: string, token: string | null): boolean {
    if (token === null) return false
    const want = Buffer.from(this.token(scope))
    const got = Buffer.from(token)
    return want.length === got.length && timingSafeEqual(want, got)
  }
}

/**
 * True when the request comes from a page of the same origin: Sec-Fetch-Site when the browser sends it,
 * else Origin (or Referer) compared with the request's own URL. A request with neither (curl, a server)
 * passes on the token alone.
 */
export function sameOrigin(request: Request): boolean {
  const site = request.headers.get('sec-fetch-site')
  if (site !== null) return site === 'same-origin' || site === 'none'
  const origin = request.headers.get('origin') ?? refererOrigin(request.headers.get('referer'))
  if (origin === null) return true
  return origin === new URL(request.url).origin
}

function refererOrigin(referer: string | null): string | null {
  if (referer === null) return null
  try {
    return new URL(referer).origin
  } catch {
    return 'invalid'
  }
}
