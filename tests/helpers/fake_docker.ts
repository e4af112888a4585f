/**
 * A scripted stand-in for dockerd on a unix socket, for client-level tests that need exact
 * bytes on the wire or a daemon that goes away and comes back.
 *
 * Permissions: `--allow-read=/tmp/nodetool-fake-docker.sock
 * --allow-write=/tmp/nodetool-fake-docker.sock --allow-net=unix:/tmp/nodetool-fake-docker.sock`.
 *
 * @module
 */

import { DockerClient } from "../../src/runtimes/docker/client.ts";

const encoder = new TextEncoder();

/** Returns the raw byte pieces to answer one request with (written apart, then closed). */
export type Script = (head: string, body: string) => (string | Uint8Array)[];

/** The fake daemon's socket: Deno grants unix sockets by exact path, so it is fixed. */
export const SOCKET = "/tmp/nodetool-fake-docker.sock";

/** Removes a stale socket file, if any. */
export function removeSocket(): void {
  try {
    Deno.removeSync(SOCKET);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

/**
 * A scripted Docker daemon on {@link SOCKET}: records request lines and answers each
 * request with its script's pieces. Disposing it stops listening (like dockerd going away).
 */
export class FakeDaemon implements AsyncDisposable {
  readonly requests: string[] = [];
  readonly #listener = (removeSocket(), Deno.listen({ transport: "unix", path: SOCKET }));
  readonly #served: Promise<void>;
  readonly #conns = new Set<Promise<void>>();

  constructor(script: Script) {
    this.#served = (async () => {
      for await (const conn of this.#listener) {
        const handled = this.#handle(conn, script);
        this.#conns.add(handled);
        handled.finally(() => this.#conns.delete(handled));
      }
    })();
  }

  async #handle(conn: Deno.UnixConn, script: Script): Promise<void> {
    try {
      let text = "";
      const buffer = new Uint8Array(4096);
      while (!text.includes("\r\n\r\n")) {
        const n = await conn.read(buffer);
        if (n === null) return;
        text += new TextDecoder().decode(buffer.subarray(0, n));
      }
      const [head, rest] = text.split("\r\n\r\n");
      const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
      let body = rest;
      while (body.length < length) {
        const n = await conn.read(buffer);
        if (n === null) break;
        body += new TextDecoder().decode(buffer.subarray(0, n));
      }
      this.requests.push(head.split("\r\n")[0]);
      for (const piece of script(head, body)) {
        await conn.write(typeof piece === "string" ? encoder.encode(piece) : piece);
        await new Promise((r) => setTimeout(r, 1)); // separate reads on the client side
      }
    } catch {
      // The client hung up early (e.g. it cancelled a stream).
    } finally {
      conn.close();
    }
  }

  /** A client for this daemon. */
  client(): DockerClient {
    return new DockerClient(`unix://${SOCKET}`);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#listener.close();
    await this.#served;
    await Promise.all(this.#conns);
    removeSocket();
  }
}

/** A JSON answer with Content-Length. */
export function json(status: number, value: unknown): string {
  const body = JSON.stringify(value);
  return `HTTP/1.1 ${status} X\r\nContent-Type: application/json\r\nContent-Length: ${
    encoder.encode(body).byteLength
  }\r\n\r\n${body}`;
}

/** One chunk of a chunked body. */
export function chunk(text: string): string {
  return `${encoder.encode(text).byteLength.toString(16)}\r\n${text}\r\n`;
}

/** A daemon answering `/version` with `apiVersion` and everything else by `rest`. */
export function daemon(apiVersion: string, rest: Script): FakeDaemon {
  return new FakeDaemon((head, body) =>
    head.startsWith("GET /version ") ? [json(200, { ApiVersion: apiVersion })] : rest(head, body)
  );
}
