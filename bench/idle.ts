/**
 * Idle keep-alive connections: open many, send one request on each, read the whole response,
 * and leave them open. Needs `--allow-net=127.0.0.1`.
 *
 * @module
 */

const CRLF2 = new Uint8Array([13, 10, 13, 10]);

function indexOf(haystack: Uint8Array, needle: Uint8Array, length: number): number {
  outer: for (let i = 0; i + needle.length <= length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/** Reads one `Content-Length` response off `conn`; returns its status. */
async function readResponse(conn: Deno.Conn): Promise<number> {
  const buffer = new Uint8Array(64 * 1024);
  let length = 0;
  for (;;) {
    const n = await conn.read(buffer.subarray(length));
    if (n === null) throw new Error("Connection closed before the response ended");
    length += n;
    const end = indexOf(buffer, CRLF2, length);
    if (end < 0) continue;
    const head = new TextDecoder().decode(buffer.subarray(0, end));
    const size = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
    if (length >= end + 4 + size) return Number(head.slice(9, 12));
  }
}

/** Connections held open; close them with `await using`. */
export interface IdleConnections extends AsyncDisposable {
  readonly count: number;
}

/**
 * Opens `count` connections to `port`, 50 at a time; each sends `GET path` with `headers`
 * and reads the response, then stays open (HTTP/1.1 keep-alive).
 */
export async function openIdle(
  port: number,
  path: string,
  headers: Record<string, string>,
  count: number,
): Promise<IdleConnections> {
  const lines = [`GET ${path} HTTP/1.1`, "Host: 127.0.0.1"];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  const request = new TextEncoder().encode(lines.join("\r\n") + "\r\n\r\n");
  const conns: Deno.Conn[] = [];
  const close = () => {
    for (const conn of conns.splice(0)) {
      try {
        conn.close();
      } catch {
        // Closed by the peer already.
      }
    }
  };
  try {
    for (let i = 0; i < count; i += 50) {
      await Promise.all(
        Array.from({ length: Math.min(50, count - i) }, async () => {
          const conn = await Deno.connect({ hostname: "127.0.0.1", port });
          conns.push(conn);
          await conn.write(request);
          const status = await readResponse(conn);
          if (status !== 200) throw new Error(`Idle connection got ${status}`);
        }),
      );
    }
  } catch (error) {
    close();
    throw error;
  }
  return {
    count,
    [Symbol.asyncDispose]: () => Promise.resolve(close()),
  };
}
