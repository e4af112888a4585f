/**
 * Listeners and graceful drain: the thin wrapper around a `(Request, info) → Response` handler.
 *
 * @module
 */

import { log } from "./log.ts";

/** A request handler in `Deno.serve`'s shape. */
export type Handler = (
  request: Request,
  info: Deno.ServeHandlerInfo,
) => Response | Promise<Response>;

/** Where and how to listen. */
export interface ListenOptions {
  /** Address to bind, e.g. `127.0.0.1` or `0.0.0.0`. */
  readonly hostname: string;
  /** Port to bind; 0 picks a free one. */
  readonly port: number;
  /** PEM certificate chain and key for HTTPS (h2 and HTTP/1.1 by ALPN); plain HTTP without. */
  readonly tls?: { readonly cert: string; readonly key: string };
  /** Name used in logs, e.g. `"http"` or `"https"`. */
  readonly name: string;
}

/** A running listener. */
export interface Listener {
  /** The URL it answers on, with the real port (useful with port 0). */
  readonly url: URL;
  /**
   * Stops accepting connections and waits for in-flight requests to finish, at most
   * `graceMs`. Resolves `true` when everything finished in time.
   */
  drain(graceMs: number): Promise<boolean>;
}

/**
 * Starts a listener and logs `listening` with its URL. Needs `--allow-net` for the address.
 *
 * @example
 * ```ts
 * const listener = listen({ hostname: "127.0.0.1", port: 0, name: "http" }, () => new Response("ok"));
 * await listener.drain(1000);
 * ```
 */
export function listen(options: ListenOptions, handler: Handler): Listener {
  const server = Deno.serve({
    hostname: options.hostname,
    port: options.port,
    cert: options.tls?.cert,
    key: options.tls?.key,
    onListen: () => {},
    // The handler never throws; this sees response bodies that failed mid-stream, such as an
    // upstream that died while sending (that client's stream is cut, nothing else).
    onError: (error) => {
      log("warn", "response stream failed", { listener: options.name, error: String(error) });
      return new Response("Internal Server Error", { status: 500 });
    },
  }, handler);
  const addr = server.addr as Deno.NetAddr;
  const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  const url = new URL(`${options.tls ? "https" : "http"}://${host}:${addr.port}/`);
  log("info", "listening", { listener: options.name, url: url.href });
  return {
    url,
    async drain(graceMs) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), graceMs);
      });
      const finished = await Promise.race([server.shutdown().then(() => true), timeout]);
      clearTimeout(timer);
      return finished;
    },
  };
}

/**
 * Resolves with the name of the first SIGTERM or SIGINT received, then stops listening for
 * them (a second signal falls back to the default: exit).
 */
export function nextShutdownSignal(): Promise<Deno.Signal> {
  return new Promise((resolve) => {
    const signals: Deno.Signal[] = ["SIGTERM", "SIGINT"];
    const handlers = signals.map((signal) => {
      const handler = () => {
        signals.forEach((s, i) => Deno.removeSignalListener(s, handlers[i]));
        resolve(signal);
      };
      Deno.addSignalListener(signal, handler);
      return handler;
    });
  });
}
