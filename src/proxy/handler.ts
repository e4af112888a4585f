/**
 * The request path: `(Request, info) → Response`. Fixed endpoints first, then normalise,
 * route, authenticate, acquire the service, forward, and release when the response is done.
 *
 * @module
 */

import type { GlobalConfig, ServiceConfig } from "../config/schema.ts";
import { log } from "../log.ts";
import { normalizePath } from "../routing/normalize.ts";
import type { RouteTable } from "../routing/table.ts";
import { type Lease, type ServiceAcquirer, ServiceUnavailableError } from "../services/lease.ts";
import { BearerAuth } from "./auth.ts";
import { CLIENT_CLOSED, forward, REFUSED } from "./forward.ts";
import { clientAddress, type Origin, upstreamHeaders } from "./headers.ts";
import {
  badGateway,
  badRequest,
  internalError,
  methodNotAllowed,
  notFound,
  serviceUnavailable,
} from "./problem.ts";
import { TrustedProxies } from "./trusted.ts";
import {
  ACME_CHALLENGE_PREFIX,
  type ChallengeOptions,
  challengeResponse,
} from "../tls/challenges.ts";
import { handshakeProblem, isWebSocketUpgrade, proxyWebSocket } from "./websocket.ts";

const noop = () => {};
/** Methods `fetch` refuses and no upstream of ours should see: tunnelling and echo. */
const NOT_FORWARDED = new Set(["CONNECT", "TRACE", "TRACK"]);
const TEXT = { "content-type": "text/plain; charset=utf-8" };

/** One access-log record per request. Never holds headers, tokens or the query string. */
export interface AccessRecord {
  /** Request method. */
  readonly method: string;
  /** Request path as received, without the query string. */
  readonly path: string;
  /** Name of the routed service, or null when none was matched. */
  readonly service: string | null;
  /** Status sent (499 when the client left before the upstream answered). */
  readonly status: number;
  /** Body size from `Content-Length`, or null for streamed bodies of unknown length. */
  readonly bytes: number | null;
  /** Milliseconds from arrival until the response was sent in full, or the WebSocket closed. */
  readonly durationMs: number;
  /** Milliseconds waited for a cold start, or null. */
  readonly coldStartMs: number | null;
  /** Client address: the peer, or the rightmost untrusted `X-Forwarded-For` hop behind a trusted proxy. */
  readonly client: string | null;
}

/** What {@link createHandler} needs. */
export interface HandlerOptions {
  /** Routes built from the configured services. */
  readonly routes: RouteTable;
  /** Global settings: `bearer_token`, `trusted_proxies` and `acme_webroot` are read. */
  readonly global: GlobalConfig;
  /** The service manager (or any stand-in) that hands out leases on ready upstreams. */
  readonly services: ServiceAcquirer;
  /** Builds the JSON body of `/proxy/status` (and its alias `/status`). */
  readonly status: () => unknown;
  /** Receives one record per request, once its response is finished. */
  readonly accessLog?: (record: AccessRecord) => void;
  /** The built-in ACME client's pending HTTP-01 answers: key authorization by token. */
  readonly acmeChallenge?: (token: string) => string | undefined;
}

/** The proxy's request handler, as `Deno.serve` calls it. */
export type ProxyHandler = (request: Request, info: Deno.ServeHandlerInfo) => Promise<Response>;

/** Per-request facts the access log and the release need once the response is done. */
interface Exchange {
  /** The peer's IP address (read up front: the connection may be gone at the end). */
  readonly peer: string | null;
  service: ServiceConfig | null;
  lease: Lease | null;
  /** True when a WebSocket holds the lease: the exchange ends when it closes. */
  socket: boolean;
  /** Ends a WebSocket exchange: set once its 101 response is returned. */
  socketClosed: () => void;
}

/** The upstream URL for a request: the lease's base, the path after the prefix, the query. */
function targetOf(lease: Lease, upstreamPath: string, query: string): string {
  const base = lease.upstream.href;
  return (base.endsWith("/") ? base.slice(0, -1) : base) + upstreamPath + query;
}

/** Splits `request.url` into the raw path and the raw query string (with its `?`). */
function splitTarget(url: string): [path: string, query: string] {
  const pathStart = url.indexOf("/", url.indexOf("//") + 2);
  if (pathStart < 0) return ["/", ""];
  const queryStart = url.indexOf("?", pathStart);
  return queryStart < 0
    ? [url.slice(pathStart), ""]
    : [url.slice(pathStart, queryStart), url.slice(queryStart)];
}

/** The peer's IP address, or null for a Unix socket. */
function peerOf(info: Deno.ServeHandlerInfo): string | null {
  return "hostname" in info.remoteAddr ? info.remoteAddr.hostname : null;
}

/** What the connection tells about the client's view of this proxy. */
function originOf(request: Request, peer: string | null): Origin {
  const url = request.url;
  const https = url.startsWith("https:");
  const hostStart = url.indexOf("//") + 2;
  const hostEnd = url.indexOf("/", hostStart);
  return {
    peer,
    proto: https ? "https" : "http",
    host: request.headers.get("host") ?? url.slice(hostStart, hostEnd < 0 ? undefined : hostEnd),
  };
}

/**
 * Creates the request handler. `/healthz` (200 `ok`) and
 * `/.well-known/acme-challenge/<token>` need no token; `/proxy/status` and `/status` answer
 * `status()` as JSON; every other path is normalised (400 if malformed), routed, and needs
 * the bearer token unless its service is public (401 before anything can start a service;
 * 404 for no route). Then the service is acquired (503 with `Retry-After` when it cannot be
 * made ready) and the request forwarded or its WebSocket relayed. A cold start adds
 * `Server-Timing: cold-start;dur=<ms>`. The lease is released and the access record written
 * exactly once: when `info.completed` settles (the response is sent, or the client left), or
 * when a WebSocket has closed on both sides. Needs `--allow-net` for upstreams and `--allow-read` for
 * `acme_webroot`.
 *
 * @example
 * ```ts
 * const handler = createHandler({
 *   routes: new RouteTable(config.services),
 *   global: config.global,
 *   services: manager,
 *   status: () => manager.status(),
 *   accessLog: (record) => log("info", "access", { ...record }),
 * });
 * Deno.serve({ port: 8080 }, handler);
 * ```
 */
export function createHandler(options: HandlerOptions): ProxyHandler {
  const { routes, services, status, accessLog, acmeChallenge } = options;
  const auth = new BearerAuth(options.global.bearer_token);
  const trusted = new TrustedProxies(options.global.trusted_proxies);
  const challenges: ChallengeOptions = {
    challenges: { get: acmeChallenge ?? (() => undefined) },
    webroot: options.global.acme_webroot,
  };

  /**
   * A managed service whose upstream refused the connection may have died a moment ago (e.g.
   * `docker kill` before its event arrived): release the lease, let the manager re-check and
   * start it again, and send the request once more. 502 when that fails too.
   */
  async function restartAndForward(
    request: Request,
    service: ServiceConfig,
    rest: string,
    headers: Headers,
    exchange: Exchange,
  ): Promise<Response> {
    exchange.lease?.release();
    exchange.lease = null;
    let lease: Lease;
    try {
      await services.recheck?.(service);
      lease = exchange.lease = await services.acquire(service, request.signal);
    } catch {
      return badGateway();
    }
    // Not retryable a second time: a refusal now is a plain 502.
    return await forward(
      request,
      targetOf(lease, rest, ""),
      headers,
      service.response_timeout * 1000,
    );
  }

  /** Routes, authenticates, acquires and forwards; records what it used in `exchange`. */
  async function proxy(
    request: Request,
    path: string,
    query: string,
    exchange: Exchange,
  ): Promise<Response> {
    const normalized = normalizePath(path);
    if (normalized === null) return badRequest("The request path is malformed.");
    const match = routes.match(normalized);
    if (match?.service.public !== true) {
      const denied = auth.check(request.headers);
      if (denied !== null) return denied;
    }
    if (match === null) return notFound();
    const websocket = isWebSocketUpgrade(request);
    if (websocket) {
      const invalid = handshakeProblem(request);
      if (invalid !== null) return invalid;
    }
    const service = exchange.service = match.service;
    let lease: Lease;
    try {
      lease = exchange.lease = await services.acquire(service, request.signal);
    } catch (error) {
      if (error instanceof ServiceUnavailableError) {
        return serviceUnavailable(error.message, error.retryAfter);
      }
      if (request.signal.aborted) return new Response(null, { status: CLIENT_CLOSED });
      log("error", "acquire failed", { service: service.name, error: String(error) });
      return serviceUnavailable("The service could not be started.", 5);
    }
    const target = targetOf(lease, match.upstreamPath, query);
    const headers = upstreamHeaders(
      request.headers,
      originOf(request, exchange.peer),
      trusted,
      service.auth_token,
    );
    const timeoutMs = service.response_timeout * 1000;
    let response: Response;
    if (websocket) {
      exchange.socket = true;
      response = await proxyWebSocket(
        request,
        target.replace(/^http/, "ws"),
        headers,
        timeoutMs,
        () => exchange.socketClosed(),
      );
      if (response.status !== 101) exchange.socket = false;
    } else {
      const managed = service.runtime !== "url";
      const sent = await forward(request, target, headers, timeoutMs, managed);
      response = sent === REFUSED
        ? await restartAndForward(request, service, match.upstreamPath + query, headers, exchange)
        : sent;
    }
    const coldStartMs = exchange.lease?.coldStartMs ?? null;
    if (coldStartMs !== null) {
      response.headers.set("server-timing", `cold-start;dur=${Math.round(coldStartMs)}`);
    }
    return response;
  }

  /** Answers one request; never throws. */
  async function respond(
    request: Request,
    path: string,
    query: string,
    exchange: Exchange,
  ): Promise<Response> {
    try {
      if (path === "/healthz") return new Response("ok", { headers: TEXT });
      if (path.startsWith(ACME_CHALLENGE_PREFIX)) {
        return (await challengeResponse(request, challenges))!;
      }
      if (path === "/proxy/status" || path === "/status") {
        return auth.check(request.headers) ?? Response.json(status());
      }
      if (NOT_FORWARDED.has(request.method)) return methodNotAllowed(request.method);
      return await proxy(request, path, query, exchange);
    } catch (error) {
      log("error", "request failed", { path, error: String(error) });
      return internalError();
    }
  }

  return async (request, info) => {
    const start = performance.now();
    const method = request.method;
    const [path, query] = splitTarget(request.url);
    const exchange: Exchange = {
      peer: peerOf(info),
      service: null,
      lease: null,
      socket: false,
      socketClosed: noop,
    };
    const forwardedFor = accessLog === undefined || trusted.empty
      ? null
      : request.headers.get("x-forwarded-for");
    const response = await respond(request, path, query, exchange);
    const finish = () => {
      exchange.lease?.release();
      if (accessLog === undefined) return;
      const length = response.headers.get("content-length");
      accessLog({
        method,
        path,
        service: exchange.service?.name ?? null,
        status: response.status,
        bytes: method === "HEAD" ? 0 : length === null ? null : Number(length),
        durationMs: Math.round(performance.now() - start),
        coldStartMs: exchange.lease?.coldStartMs ?? null,
        client: exchange.peer === null ? null : clientAddress(exchange.peer, forwardedFor, trusted),
      });
    };
    if (exchange.socket) exchange.socketClosed = finish;
    else info.completed.then(finish, finish);
    return response;
  };
}
