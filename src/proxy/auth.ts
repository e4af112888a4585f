/**
 * Bearer-token authentication with a comparison whose time does not depend on the guess.
 *
 * @module
 */

import { unauthorized } from "./problem.ts";

/** `Bearer <token>`, scheme case-insensitive (RFC 6750). */
const BEARER = /^bearer +(\S+) *$/i;

/**
 * Compares two strings in time that depends only on `expected`'s length: every character of
 * `expected` is visited whatever `given` holds, with no early exit on a length mismatch.
 *
 * @example
 * ```ts
 * timingSafeEqual("secret", "guess"); // false
 * ```
 */
export function timingSafeEqual(expected: string, given: string): boolean {
  let diff = expected.length ^ given.length;
  for (let i = 0; i < expected.length; i++) {
    diff |= expected.charCodeAt(i) ^ (i < given.length ? given.charCodeAt(i) : 0);
  }
  return diff === 0;
}

/**
 * Checks requests against one bearer token.
 *
 * @example
 * ```ts
 * const auth = new BearerAuth(config.global.bearer_token);
 * const denied = auth.check(request.headers); // null when authorised, else a 401 Response
 * ```
 */
export class BearerAuth {
  readonly #token: string;

  /** @param token the expected token; must not be empty. */
  constructor(token: string) {
    if (token === "") throw new TypeError("Bearer token must not be empty");
    this.#token = token;
  }

  /** Whether `headers` carry `Authorization: Bearer <the token>`. */
  allows(headers: Headers): boolean {
    const match = BEARER.exec(headers.get("authorization") ?? "");
    return timingSafeEqual(this.#token, match?.[1] ?? "");
  }

  /**
   * Returns null when `headers` carry the token, else a 401 problem with
   * `WWW-Authenticate: Bearer`.
   */
  check(headers: Headers): Response | null {
    return this.allows(headers) ? null : unauthorized(headers.has("authorization"));
  }
}
