/**
 * One request/response exchange with a plain-HTTP upstream over a pooled connection: the
 * request head and body are written (see `request_writer.ts`), the response head is parsed
 * strictly (see `response_parser.ts`) and the body streamed from the socket (see
 * `body_reader.ts`). The connection goes back to the pool only once the body was read in
 * full, the request body was written in full, and both sides allow keep-alive.
 *
 * Failures: the client going away (`signal`) closes the connection; no response head within
 * the timeout closes it too; a pooled connection that turns out closed is retried once on a
 * fresh one when the request has no body (a body is never sent twice).
 *
 * Measured with `bench/transport.ts` (2 cores, AMD EPYC, Deno 2.9.6, nginx upstream, 1 KiB
 * responses, wrk -t1, 5 s × 2 interleaved rounds, medians):
 *
 * | target | c50 req/s | c50 p99 ms | c200 req/s | c200 p99 ms |
 * | --- | ---: | ---: | ---: | ---: |
 * | direct | 21725 | 5.66 | 25403 | 12.73 |
 * | bare `fetch` forwarder | 5198 | 24.36 | 5658 | 60.02 |
 * | bare forwarder on this transport | 5909 (1.14×) | 24.91 | 7572 (1.34×) | 50.69 |
 * | proxy on this transport | 4228 | 28.11 | 4081 | 102.38 |
 * | proxy on `fetch` (before) | 3762 | 29.62 | 2748 | 142.66 |
 *
 * 200 MB streamed uploads sent by a `fetch` client take 17–27 s through either forwarder
 * (0.7 s direct); the same upload from curl passes either in under 1 s, so that slowness
 * is the sending `fetch`, not the proxy's upstream client. Request and response chunks
 * pass through JS here (with `fetch` they stay in Rust), so their garbage shows in RSS until
 * V8 collects it; after the heap's first growth to its working size, a 200 MB download or
 * upload stays under +50 MiB (body reads are sized adaptively, see `connection.ts`).
 *
 * @module
 */

import { BodySource } from "./body_reader.ts";
import type { Connection } from "./connection.ts";
import type { Pool } from "./pool.ts";
import { CHUNKED, encodeHead, NO_BODY, writeBody } from "./request_writer.ts";
import { contentLength, parseHead, ProtocolError, type ResponseHead } from "./response_parser.ts";

/** Where a plain `http:` URL points: pool key (`host:port`), address, and request target. */
export interface HttpTarget {
  /** `host[:port]` as written in the URL: the pool key and the `Host` header. */
  readonly authority: string;
  /** Host name or IP address to connect to (IPv6 without brackets). */
  readonly hostname: string;
  /** TCP port (80 when the URL names none). */
  readonly port: number;
  /** The request target: path and query exactly as in the URL. */
  readonly path: string;
}

/** Why an exchange failed. */
export type FailureKind = "timeout" | "aborted" | "failed";

/** An exchange that produced no response: the upstream did not answer in time, the client left, or the upstream failed. */
export class UpstreamError extends Error {
  override name = "UpstreamError";
  /** What happened. */
  readonly kind: FailureKind;

  /** An error of `kind`, caused by `cause`. */
  constructor(kind: FailureKind, cause: unknown) {
    super(`Upstream exchange failed (${kind}): ${String(cause)}`, { cause });
    this.kind = kind;
  }
}

/** The upstream closed a connection before sending a single response byte. */
class NoResponseError extends Error {
  override name = "NoResponseError";
}

/**
 * Splits a plain `http://host[:port]/path?query` URL without re-encoding anything; null for
 * any other scheme, credentials in the URL, or characters that cannot appear in a request
 * target (controls, space, DEL).
 *
 * @example
 * ```ts
 * httpTarget("http://127.0.0.1:8000/x?q='1'"); // { authority: "127.0.0.1:8000", hostname: "127.0.0.1", port: 8000, path: "/x?q='1'" }
 * ```
 */
export function httpTarget(url: string): HttpTarget | null {
  if (!url.startsWith("http://")) return null;
  let slash = url.indexOf("/", 7);
  if (slash < 0) slash = url.length;
  const authority = url.slice(7, slash);
  const path = slash === url.length ? "/" : url.slice(slash);
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c <= 32 || c === 127) return null;
  }
  if (authority.length === 0 || authority.includes("@")) return null;
  const bracket = authority.startsWith("[") ? authority.indexOf("]") : -1;
  const colon = authority.indexOf(":", bracket + 1);
  const hostname = bracket > 0
    ? authority.slice(1, bracket)
    : authority.slice(0, colon < 0 ? undefined : colon);
  const port = colon < 0 ? 80 : Number(authority.slice(colon + 1));
  if (hostname.length === 0 || !Number.isInteger(port) || port < 1 || port > 65535) return null;
  return { authority, hostname, port, path };
}

/** The response timeout fired. */
function onTimeout(exchange: Exchange): void {
  exchange.interrupt("timeout");
}

/** Closes a connection that finished opening after its exchange gave up on it. */
function closeLate(connection: Connection): void {
  connection.close();
}

function ignore(): void {}

/** State of one exchange: what to close on abort or timeout, and when to pool the connection. */
class Exchange {
  readonly pool: Pool;
  readonly signal: AbortSignal;
  connection: Connection | null = null;
  failure: FailureKind | null = null;
  /** True once the request body is written in full (or there is none). */
  written = true;
  /** Set once the response head arrived. */
  head: ResponseHead | null = null;
  timer: ReturnType<typeof setTimeout> | undefined;
  #connecting: PromiseWithResolvers<never> | null = null;
  #ended = false;

  constructor(pool: Pool, signal: AbortSignal) {
    this.pool = pool;
    this.signal = signal;
  }

  /** The client went away (an `abort` listener). */
  handleEvent(): void {
    this.interrupt("aborted");
  }

  /** Gives up on the exchange: the connection is closed, a pending connect abandoned. */
  interrupt(kind: FailureKind): void {
    this.failure ??= kind;
    this.connection?.close();
    this.#connecting?.reject(new Error(`Interrupted: ${kind}`));
  }

  /** A pooled connection to `target`, or a new one (abandoned on interrupt). */
  async connect(target: HttpTarget, fresh: boolean): Promise<Connection> {
    const pooled = fresh ? null : this.pool.take(target.authority);
    if (pooled !== null) return pooled;
    const waiter = this.#connecting = Promise.withResolvers<never>();
    const connecting = this.pool.connect(target.authority, target.hostname, target.port);
    try {
      return await Promise.race([connecting, waiter.promise]);
    } catch (error) {
      connecting.then(closeLate, ignore);
      throw error;
    } finally {
      this.#connecting = null;
    }
  }

  /** Streams the request body; a failure before the response head closes the connection. */
  async upload(
    connection: Connection,
    reader: ReadableStreamDefaultReader<Uint8Array>,
    framing: number,
    first: Uint8Array | null,
  ): Promise<void> {
    this.written = false;
    try {
      await writeBody(connection, reader, framing, first);
      this.written = true;
    } catch {
      if (this.head === null) connection.close();
    }
  }

  /** The response is done: the connection is pooled when it is clean, else closed. */
  end(complete: boolean): void {
    if (this.#ended) return;
    this.#ended = true;
    this.signal.removeEventListener("abort", this);
    const connection = this.connection!;
    if (complete && this.written && this.head!.keepAlive && connection.buffered === 0) {
      this.pool.release(connection);
    } else connection.close();
  }
}

/** Reads the final response head (1xx heads are skipped); consumes it from the buffer. */
async function readHead(connection: Connection, headRequest: boolean): Promise<ResponseHead> {
  let received = false;
  for (;;) {
    if (connection.buffered > 0) {
      received = true;
      const head = parseHead(connection.buffer, connection.start, connection.end, headRequest);
      if (head !== null) {
        connection.start += head.size;
        if (head.status >= 200) return head;
        continue;
      }
    }
    if (!(await connection.fill())) {
      throw received
        ? new ProtocolError("Upstream closed inside the response head")
        : new NoResponseError("Upstream closed without answering");
    }
  }
}

/**
 * Sends requests to plain-HTTP upstreams over keep-alive connections from a {@link Pool}.
 *
 * @example
 * ```ts
 * const client = new Http1Client(new Pool({ maxIdlePerOrigin: 256, idleTimeoutMs: 30_000 }));
 * const response = await client.send(request, httpTarget("http://127.0.0.1:8000/x")!, headers, 30_000);
 * ```
 */
export class Http1Client {
  readonly #pool: Pool;

  /** A client drawing connections from `pool`. */
  constructor(pool: Pool) {
    this.#pool = pool;
  }

  /**
   * Sends `request` (its method and body) to `target` with `headers` as they are, and
   * resolves with the upstream's response once its head arrived: body streamed (none for
   * HEAD, 1xx, 204 and 304), hop-by-hop headers removed. The body is framed as the client
   * framed it: its `Content-Length`, else chunked; none when the client sent none. Rejects
   * with an {@link UpstreamError}: `timeout` when no head came within `timeoutMs`, `aborted`
   * when `request.signal` aborted, `failed` for anything else (refused, reset, malformed).
   * Needs `--allow-net` for the upstream.
   */
  async send(
    request: Request,
    target: HttpTarget,
    headers: Headers,
    timeoutMs: number,
  ): Promise<Response> {
    if (request.signal.aborted) throw new UpstreamError("aborted", request.signal.reason);
    const method = request.method;
    const body = method === "GET" || method === "HEAD" ? null : request.body;
    let framing = NO_BODY;
    let reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
    let first: Uint8Array | null = null;
    if (body !== null) {
      const length = contentLength(headers.get("content-length") ?? "");
      reader = body.getReader();
      if (length >= 0) framing = length;
      else if (request.headers.has("transfer-encoding")) framing = CHUNKED;
      else {
        // Neither header: a body only if the stream yields bytes (HTTP/2, or a constructed Request).
        const next = await reader.read();
        if (!next.done) {
          framing = CHUNKED;
          first = next.value;
        }
      }
      if (framing === NO_BODY || framing === 0) {
        reader.releaseLock();
        reader = null;
      }
    }
    const exchange = new Exchange(this.#pool, request.signal);
    request.signal.addEventListener("abort", exchange);
    exchange.timer = setTimeout(onTimeout, timeoutMs, exchange);
    const head = encodeHead(method, target.path, target.authority, headers, framing);
    try {
      for (let fresh = false;; fresh = true) {
        const connection = exchange.connection = await exchange.connect(target, fresh);
        if (exchange.failure !== null) connection.close();
        try {
          await connection.write(head);
          if (reader !== null) exchange.upload(connection, reader, framing, first);
          exchange.head = await readHead(connection, method === "HEAD");
          break;
        } catch (error) {
          const stale = connection.reused && !fresh && framing === NO_BODY &&
            exchange.failure === null && !(error instanceof ProtocolError);
          connection.close();
          if (!stale) throw error;
        }
      }
    } catch (error) {
      clearTimeout(exchange.timer);
      request.signal.removeEventListener("abort", exchange);
      exchange.connection?.close();
      reader?.cancel(error).catch(ignore);
      throw new UpstreamError(exchange.failure ?? "failed", error);
    }
    clearTimeout(exchange.timer);
    return respond(exchange, exchange.head);
  }
}

/** The client's response for a parsed head: body from the buffer, streamed, or none. */
function respond(exchange: Exchange, head: ResponseHead): Response {
  const connection = exchange.connection!;
  const length = head.length;
  let body: Uint8Array<ArrayBuffer> | ReadableStream<Uint8Array> | null = null;
  if (head.status === 205 || length === 0) {
    exchange.end(length === 0);
  } else if (length > 0 && connection.buffered >= length) {
    body = connection.buffer.slice(connection.start, connection.start + length);
    connection.start += length;
    exchange.end(true);
  } else {
    body = new ReadableStream(new BodySource(connection, length, exchange), { highWaterMark: 0 });
  }
  return new Response(body, {
    status: head.status,
    statusText: head.statusText,
    headers: head.headers,
  });
}
