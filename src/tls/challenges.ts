/**
 * The HTTP side of certificates: HTTP-01 challenge answers (from memory for the built-in
 * client, from `acme_webroot` for external clients such as certbot) and the plain-HTTP
 * listener's handler that redirects everything else to HTTPS.
 *
 * @example
 * ```ts
 * const challenges = new ChallengeStore();
 * Deno.serve({ port: 80 }, createRedirectHandler({ challenges, domain: "example.com" }));
 * ```
 *
 * @module
 */

import { notFound, problem } from "../proxy/problem.ts";
import type { Handler } from "../server.ts";
import type { ChallengePublisher } from "./acme/client.ts";

/** Path prefix of HTTP-01 challenge requests (RFC 8555 §8.3). */
export const ACME_CHALLENGE_PREFIX = "/.well-known/acme-challenge/";
const TOKEN = /^[A-Za-z0-9_-]+$/;

/**
 * In-memory key authorizations by token: the ACME client publishes into it, the HTTP listener
 * answers from it.
 */
export class ChallengeStore implements ChallengePublisher {
  readonly #answers = new Map<string, string>();

  /** Answers `token` with `keyAuthorization` until {@link ChallengeStore.unpublish}. */
  publish(token: string, keyAuthorization: string): void {
    this.#answers.set(token, keyAuthorization);
  }

  /** Stops answering `token`. */
  unpublish(token: string): void {
    this.#answers.delete(token);
  }

  /** The key authorization for `token`, if published. */
  get(token: string): string | undefined {
    return this.#answers.get(token);
  }
}

/** Where in-memory answers are looked up (a {@link ChallengeStore}, or any lookup). */
export interface ChallengeLookup {
  /** The key authorization for `token`, if published. */
  get(token: string): string | undefined;
}

/** Options for {@link challengeResponse} and {@link createRedirectHandler}. */
export interface ChallengeOptions {
  /** Tokens published by the built-in client. */
  challenges: ChallengeLookup;
  /** A certbot-style webroot: `<webroot>/.well-known/acme-challenge/<token>`; null for none. */
  webroot?: string | null;
}

/**
 * Answers a challenge request from memory, then from the webroot (needs `--allow-read` on
 * it); 404 for unknown tokens; null when `request` is not a challenge request at all.
 */
export async function challengeResponse(
  request: Request,
  { challenges, webroot }: ChallengeOptions,
): Promise<Response | null> {
  const { pathname } = new URL(request.url);
  if (!pathname.startsWith(ACME_CHALLENGE_PREFIX)) return null;
  if (request.method !== "GET" && request.method !== "HEAD") {
    return problem(405, "Challenges answer GET and HEAD only.", { allow: "GET, HEAD" });
  }
  const token = pathname.slice(ACME_CHALLENGE_PREFIX.length);
  if (!TOKEN.test(token)) return notFound("No such challenge.");
  let answer = challenges.get(token);
  if (answer === undefined && webroot) {
    try {
      answer = await Deno.readTextFile(`${webroot}${ACME_CHALLENGE_PREFIX}${token}`);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
  if (answer === undefined) return notFound("No such challenge.");
  return new Response(request.method === "HEAD" ? null : answer, {
    headers: { "content-type": "text/plain" },
  });
}

/** Options for {@link createRedirectHandler}. */
export interface RedirectHandlerOptions extends ChallengeOptions {
  /** Host to redirect to when the request has no usable `Host`. */
  domain: string;
  /** The public HTTPS port; appended to the redirect when not 443. */
  httpsPort?: number;
}

/**
 * The plain-HTTP listener's handler: challenges are answered, everything else gets a 308 to
 * `https://<Host or domain>[:httpsPort]<path and query>`.
 *
 * @example
 * ```ts
 * const handler = createRedirectHandler({ challenges, webroot: "/var/www/acme", domain: "example.com" });
 * ```
 */
export function createRedirectHandler(options: RedirectHandlerOptions): Handler {
  const port = options.httpsPort && options.httpsPort !== 443 ? `:${options.httpsPort}` : "";
  return async (request) => {
    const challenge = await challengeResponse(request, options);
    if (challenge) return challenge;
    const url = new URL(request.url);
    const target = new URL(`https://${hostOf(request.headers.get("host")) ?? options.domain}`);
    target.port = port.slice(1);
    target.pathname = url.pathname;
    target.search = url.search;
    return new Response(null, { status: 308, headers: { location: target.href } });
  };
}

/** The host name of a `Host` header without its port, or null when absent or malformed. */
function hostOf(header: string | null): string | null {
  if (!header) return null;
  try {
    const parsed = new URL(`http://${header}`);
    return parsed.username || parsed.password || parsed.pathname !== "/" ? null : parsed.hostname;
  } catch {
    return null;
  }
}
