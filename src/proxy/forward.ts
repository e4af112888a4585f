/**
 * Forwarding one HTTP request upstream, streaming both bodies: plain `http:` upstreams over
 * the pooled HTTP/1.1 transport (`transport/`), `https:` ones with `fetch`.
 *
 * Compression: Deno 2.9's `fetch` decodes gzip and br response bodies (keeping the upstream's
 * `Content-Encoding` and `Content-Length`, which then no longer match the bytes) unless the
 * request's `Accept-Encoding` is exactly `identity`. So the proxy always asks upstreams for
 * `identity`: bodies pass through untouched, with headers that describe them, and neither
 * side spends CPU on compression the client would never see.
 *
 * Query strings pass byte for byte to `http:` upstreams. Through `fetch` (`https:`), its URL
 * parser percent-encodes `'`, `"`, `<`, `>` and raw non-ASCII in a query; existing escapes
 * are never touched.
 *
 * @module
 */

import { log } from "../log.ts";
import { stripHopByHop } from "./headers.ts";
import { badGateway, gatewayTimeout } from "./problem.ts";
import { Http1Client, httpTarget, UpstreamError } from "./transport/client.ts";
import { Pool } from "./transport/pool.ts";
import { ProtocolError } from "./transport/response_parser.ts";

/** Statuses whose responses never have a body. */
const NULL_BODY_STATUS: ReadonlySet<number> = new Set([204, 205, 304]);

/** Status logged for a request whose client went away before the upstream answered. */
export const CLIENT_CLOSED = 499;

/** What {@link forward} resolves when a retryable request's connection was refused. */
export const REFUSED: unique symbol = Symbol("refused");

/** Keep-alive connections to every plain-HTTP upstream of this process. */
const pool = new Pool({ maxIdlePerOrigin: 256, idleTimeoutMs: 30_000 });
const client = new Http1Client(pool);

/** Closes the idle keep-alive connections to upstreams (on shutdown, after the drain). */
export function closeIdleUpstreamConnections(): void {
  pool.closeIdle();
}

/**
 * Sends `request` to `url` with `headers` (already filtered, see `upstreamHeaders`) and
 * returns the upstream's response for the client: status and filtered headers, body streamed
 * as it arrives (none for HEAD). Redirects are returned, not followed. No response headers
 * within `timeoutMs` → 504; refused, reset or malformed (ambiguous framing is never
 * forwarded) → 502, except that with `retryable` a bodiless request whose connection was
 * refused (nothing was sent) resolves {@link REFUSED} so the caller can restart the service
 * and send it again; client gone first → an empty 499. An upstream that dies mid-body errors
 * only this response's stream. Needs `--allow-net` for the upstream.
 *
 * @example
 * ```ts
 * const response = await forward(request, "http://127.0.0.1:8000/x?q=1", headers, 30_000);
 * ```
 */
export function forward(
  request: Request,
  url: string,
  headers: Headers,
  timeoutMs: number,
  retryable?: false,
): Promise<Response>;
export function forward(
  request: Request,
  url: string,
  headers: Headers,
  timeoutMs: number,
  retryable: boolean,
): Promise<Response | typeof REFUSED>;
export async function forward(
  request: Request,
  url: string,
  headers: Headers,
  timeoutMs: number,
  retryable = false,
): Promise<Response | typeof REFUSED> {
  headers.set("accept-encoding", "identity");
  const target = httpTarget(url);
  if (target === null) return await forwardWithFetch(request, url, headers, timeoutMs);
  try {
    return await client.send(request, target, headers, timeoutMs);
  } catch (error) {
    if (!(error instanceof UpstreamError)) throw error;
    if (error.kind === "timeout") return gatewayTimeout();
    if (error.kind === "aborted") return new Response(null, { status: CLIENT_CLOSED });
    // Nothing was sent when the connection was refused; a body could not be sent twice.
    if (
      retryable && error.cause instanceof Deno.errors.ConnectionRefused && request.body === null
    ) {
      return REFUSED;
    }
    if (error.cause instanceof ProtocolError) {
      log("warn", "upstream broke HTTP/1.1", {
        upstream: target.authority,
        error: error.cause.message,
      });
    }
    return badGateway();
  }
}

/** {@link forward} with `fetch` (for `https:` upstreams). */
async function forwardWithFetch(
  request: Request,
  url: string,
  headers: Headers,
  timeoutMs: number,
): Promise<Response> {
  const method = request.method;
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(), timeoutMs);
  let upstream: Response;
  try {
    upstream = await fetch(url, {
      method,
      headers,
      body: method === "GET" || method === "HEAD" ? null : request.body,
      duplex: "half",
      redirect: "manual",
      signal: AbortSignal.any([request.signal, timeout.signal]),
    } as RequestInit);
  } catch {
    if (timeout.signal.aborted) return gatewayTimeout();
    if (request.signal.aborted) return new Response(null, { status: CLIENT_CLOSED });
    return badGateway();
  } finally {
    clearTimeout(timer);
  }
  let body = upstream.body;
  if (body !== null && (method === "HEAD" || NULL_BODY_STATUS.has(upstream.status))) {
    await body.cancel();
    body = null;
  }
  return new Response(body, {
    status: upstream.status,
    statusText: upstream.statusText,
    headers: stripHopByHop(upstream.headers),
  });
}
