/**
 * A minimal HTTP/1.1 client exchange over one already-open connection (the Docker socket):
 * writes one request, parses the response head and streams the body, decoding
 * `Content-Length`, `chunked` and read-until-close bodies. The connection is closed when the
 * body ends, is cancelled, or the signal aborts.
 *
 * @module
 */

/** One request to send. `target` is the request target, e.g. `/v1.41/containers/json`. */
export interface Http1Request {
  readonly method: string;
  readonly target: string;
  readonly headers?: Record<string, string>;
  /** A byte body is sent with `Content-Length`; a stream with `Transfer-Encoding: chunked`. */
  readonly body?: Uint8Array | ReadableStream<Uint8Array>;
  readonly signal?: AbortSignal;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const MAX_HEAD = 64 * 1024;
const NULL_BODY = new Set([204, 205, 304]);

/**
 * Sends `request` on `conn` and resolves with the response once its head has arrived. The body
 * streams from the connection; `conn` is owned from here on and closed when the body is done.
 *
 * @example
 * ```ts
 * const conn = await Deno.connect({ transport: "unix", path: "/var/run/docker.sock" });
 * const res = await exchange(conn, { method: "GET", target: "/_ping", headers: { Host: "docker" } });
 * await res.text(); // "OK"
 * ```
 */
export async function exchange(conn: Deno.Conn, request: Http1Request): Promise<Response> {
  const reader = new ConnReader(conn);
  const onAbort = () => reader.close();
  request.signal?.addEventListener("abort", onAbort, { once: true });
  const finish = () => {
    request.signal?.removeEventListener("abort", onAbort);
    reader.close();
  };
  try {
    request.signal?.throwIfAborted();
    await writeRequest(conn, request);
    const head = parseHead(await reader.readHead());
    const noBody = request.method === "HEAD" || NULL_BODY.has(head.status);
    if (noBody) finish();
    const body = noBody ? null : bodyStream(reader, head.headers, finish, request.signal);
    return new Response(body, {
      status: head.status,
      statusText: head.statusText,
      headers: head.headers,
    });
  } catch (error) {
    finish();
    throw request.signal?.aborted ? request.signal.reason : error;
  }
}

async function writeRequest(conn: Deno.Conn, request: Http1Request): Promise<void> {
  const lines = [`${request.method} ${request.target} HTTP/1.1`];
  for (const [name, value] of Object.entries(request.headers ?? {})) {
    lines.push(`${name}: ${value}`);
  }
  const body = request.body;
  if (body instanceof Uint8Array) lines.push(`Content-Length: ${body.byteLength}`);
  else if (body) lines.push("Transfer-Encoding: chunked");
  else if (request.method === "POST" || request.method === "PUT") lines.push("Content-Length: 0");
  await writeAll(conn, encoder.encode(lines.join("\r\n") + "\r\n\r\n"));
  if (body instanceof Uint8Array) {
    await writeAll(conn, body);
  } else if (body) {
    for await (const chunk of body) {
      if (chunk.byteLength === 0) continue;
      await writeAll(conn, encoder.encode(chunk.byteLength.toString(16) + "\r\n"));
      await writeAll(conn, chunk);
      await writeAll(conn, encoder.encode("\r\n"));
    }
    await writeAll(conn, encoder.encode("0\r\n\r\n"));
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let done = 0; done < bytes.byteLength;) done += await conn.write(bytes.subarray(done));
}

interface Head {
  status: number;
  statusText: string;
  headers: Headers;
}

function parseHead(text: string): Head {
  const [statusLine, ...lines] = text.split("\r\n");
  const match = /^HTTP\/1\.[01] (\d{3}) ?(.*)$/.exec(statusLine);
  if (!match) throw new TypeError(`Invalid HTTP status line ${JSON.stringify(statusLine)}`);
  const headers = new Headers();
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon > 0) headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  return { status: Number(match[1]), statusText: match[2], headers };
}

/** Streams the body framed as the headers say, then calls `finish` (closing the connection). */
function bodyStream(
  reader: ConnReader,
  headers: Headers,
  finish: () => void,
  signal?: AbortSignal,
): ReadableStream<Uint8Array> {
  const chunked = /\bchunked\b/i.test(headers.get("transfer-encoding") ?? "");
  const length = headers.get("content-length");
  let remaining = chunked ? 0 : length !== null ? Number(length) : Infinity;
  let chunkedDone = false;

  async function next(): Promise<Uint8Array | null> {
    if (!chunked) {
      if (remaining === 0) return null;
      const bytes = await reader.readSome(remaining);
      if (bytes === null) {
        if (remaining === Infinity) return null;
        throw new TypeError("Connection closed before the response body was complete");
      }
      remaining -= bytes.byteLength;
      return bytes;
    }
    if (chunkedDone) return null;
    if (remaining === 0) {
      const size = parseInt((await reader.readLine()).split(";")[0], 16);
      if (Number.isNaN(size)) throw new TypeError("Invalid chunk size in response body");
      if (size === 0) {
        while ((await reader.readLine()) !== "");
        chunkedDone = true;
        return null;
      }
      remaining = size;
    }
    const bytes = await reader.readSome(remaining);
    if (bytes === null) throw new TypeError("Connection closed inside a chunk");
    remaining -= bytes.byteLength;
    if (remaining === 0) await reader.readLine();
    return bytes;
  }

  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const bytes = await next();
        if (bytes === null) {
          finish();
          controller.close();
        } else controller.enqueue(bytes);
      } catch (error) {
        finish();
        controller.error(signal?.aborted ? signal.reason : error);
      }
    },
    cancel() {
      finish();
    },
  }, { highWaterMark: 0 });
}

/** Buffered reads from a connection; `close()` is idempotent. */
class ConnReader {
  #conn: Deno.Conn;
  #buffer = new Uint8Array(0);
  #closed = false;

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // Already closed by the peer.
    }
  }

  async #fill(): Promise<boolean> {
    const chunk = new Uint8Array(64 * 1024);
    const n = await this.#conn.read(chunk);
    if (n === null) return false;
    const merged = new Uint8Array(this.#buffer.byteLength + n);
    merged.set(this.#buffer);
    merged.set(chunk.subarray(0, n), this.#buffer.byteLength);
    this.#buffer = merged;
    return true;
  }

  #take(n: number): Uint8Array {
    const out = this.#buffer.subarray(0, n);
    this.#buffer = this.#buffer.subarray(n);
    return out;
  }

  async #until(delimiter: string, max: number): Promise<string> {
    const d = encoder.encode(delimiter);
    for (let from = 0;;) {
      const at = indexOf(this.#buffer, d, from);
      if (at >= 0) {
        const text = decoder.decode(this.#take(at));
        this.#take(d.byteLength);
        return text;
      }
      from = Math.max(0, this.#buffer.byteLength - d.byteLength + 1);
      if (this.#buffer.byteLength > max) throw new TypeError("Response head too large");
      if (!(await this.#fill())) throw new TypeError("Connection closed before the response head");
    }
  }

  readHead(): Promise<string> {
    return this.#until("\r\n\r\n", MAX_HEAD);
  }

  readLine(): Promise<string> {
    return this.#until("\r\n", MAX_HEAD);
  }

  /** Up to `max` bytes: what is buffered, else one read. Null at end of stream. */
  async readSome(max: number): Promise<Uint8Array | null> {
    if (this.#buffer.byteLength === 0 && !(await this.#fill())) return null;
    return this.#take(Math.min(max, this.#buffer.byteLength)).slice();
  }
}

function indexOf(haystack: Uint8Array, needle: Uint8Array, from: number): number {
  outer: for (let i = from; i <= haystack.byteLength - needle.byteLength; i++) {
    for (let j = 0; j < needle.byteLength; j++) {
      if (haystack[i + j] !== needle[j]) continue outer;
    }
    return i;
  }
  return -1;
}
