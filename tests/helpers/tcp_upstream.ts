/**
 * A raw TCP upstream on a loopback port for tests that need bytes an HTTP server would never
 * send (bad framing, closes mid-response, hangs).
 *
 * @module
 */

/** A running raw upstream. */
export interface TcpUpstream extends AsyncDisposable {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** Connections accepted so far. */
  accepted(): number;
}

/**
 * Listens on a free loopback port and runs `serve` once per accepted connection, closing the
 * connection when it settles. Disposal closes the listener and every open connection, and
 * waits for every `serve` to settle. Needs `--allow-net=127.0.0.1`.
 *
 * @example
 * ```ts
 * await using upstream = tcpUpstream(async (conn) => {
 *   await conn.write(new TextEncoder().encode("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel"));
 * });
 * ```
 */
export function tcpUpstream(serve: (conn: Deno.Conn) => Promise<void>): TcpUpstream {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const tasks: Promise<void>[] = [];
  let accepted = 0;
  const accepting = (async () => {
    for await (const conn of listener) {
      accepted++;
      conns.add(conn);
      tasks.push(
        serve(conn).catch(() => {}).finally(() => {
          conns.delete(conn);
          try {
            conn.close();
          } catch {
            // Closed by `serve` already.
          }
        }),
      );
    }
  })();
  return {
    url: `http://127.0.0.1:${listener.addr.port}`,
    accepted: () => accepted,
    async [Symbol.asyncDispose]() {
      listener.close();
      for (const conn of conns) conn.close();
      await accepting;
      await Promise.all(tasks);
    },
  };
}
