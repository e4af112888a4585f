/**
 * Rig for the reliability tests: the whole proxy assembled in-process from a config file
 * (`createProxy`: real manager, process runtime, route table, handler and listener on port 0),
 * a bounded concurrent client, and raw TCP exchanges for bytes `fetch` would never send.
 *
 * Running the proxy in the test process puts its sockets, timers and child processes under
 * Deno's leak sanitizers: a test that ends with any of them open fails.
 *
 * Tests using it need `--allow-net=127.0.0.1 --allow-read=.,/tmp --allow-write=/tmp
 * --allow-run=deno,ps --allow-env`.
 *
 * @module
 */

import { createProxy, type ProxyApp } from "../../src/app.ts";
import { loadConfig } from "../../src/config/load.ts";
import type { ServiceStatus } from "../../src/services/manager.ts";
import { setLogLevel } from "../../src/log.ts";
import { listen } from "../../src/server.ts";
import { fixtureAppCommand } from "./fixture_service.ts";

/** The bearer token of every proxy this rig starts. */
export const TOKEN = "reliability-token-0123456789abcdef0123456789";

/** `Authorization` headers carrying {@link TOKEN}. */
export const AUTH: Readonly<Record<string, string>> = { authorization: `Bearer ${TOKEN}` };

/** The argv of a process service that answers `ok`, `/pid`, and `/sigkill` (kills itself). */
export function killableCommand(): string[] {
  return fixtureAppCommand("killable_app.ts", ["--allow-run=kill"], []);
}

/** A proxy running in this process. */
export interface RunningProxy extends AsyncDisposable {
  /** `http://127.0.0.1:<port>` */
  readonly base: string;
  readonly port: number;
  readonly app: ProxyApp;
  /** The status of the service called `name`. */
  service(name: string): ServiceStatus;
}

/**
 * Writes `{global, services}` (global gets the test token, loopback, `shutdown_grace: 1`
 * unless given) to a temporary config file, loads it like the CLI does and serves it on a
 * free loopback port. Logs below `warn` are silenced.
 *
 * @example
 * ```ts
 * await using proxy = await startApp([{ name: "a", path: "/a", url: upstream }]);
 * ```
 */
export async function startApp(
  services: Record<string, unknown>[],
  global: Record<string, unknown> = {},
): Promise<RunningProxy> {
  setLogLevel("warn");
  const dir = await Deno.makeTempDir({ prefix: "nodetool-reliability-" });
  const file = `${dir}/proxy.yaml`;
  const config = {
    global: { bearer_token: TOKEN, listen_host: "127.0.0.1", shutdown_grace: 1, ...global },
    services,
  };
  // JSON is YAML: the loader reads it like any proxy.yaml.
  await Deno.writeTextFile(file, JSON.stringify(config, null, 2));
  const app = await createProxy((await loadConfig(file)).config);
  const listener = listen({ name: "http", hostname: "127.0.0.1", port: 0 }, app.handler);
  const port = Number(listener.url.port);
  return {
    base: `http://127.0.0.1:${port}`,
    port,
    app,
    service(name) {
      const found = app.manager.status().find((s) => s.name === name);
      if (found === undefined) throw new Error(`No service ${name}`);
      return found;
    },
    async [Symbol.asyncDispose]() {
      await app.stop([listener]);
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** What {@link hammer} saw. */
export interface LoadReport {
  /** Responses by status; `0` counts requests that threw. */
  readonly statuses: Map<number, number>;
  /** The first few unexpected outcomes, for the assertion message. */
  readonly samples: string[];
}

/**
 * Sends exactly `total` requests, `concurrency` at a time, and reads every body. `next(i)`
 * gives the URL of request `i`.
 * `expect(status, body, i)` says whether an outcome is acceptable (status 0: the request
 * threw, body: the error); others are sampled. Uses its own
 * HTTP client, closed at the end so no pooled connection outlives the call.
 */
export async function hammer(
  total: number,
  concurrency: number,
  next: (i: number) => string,
  expect: (status: number, body: string, i: number) => boolean = (status) =>
    status >= 200 && status < 300,
): Promise<LoadReport> {
  const client = Deno.createHttpClient({});
  const statuses = new Map<number, number>();
  const samples: string[] = [];
  let issued = 0;
  const worker = async () => {
    while (issued < total) {
      const i = issued++;
      const url = next(i);
      let status = 0;
      let detail = "";
      try {
        const response = await fetch(url, { headers: AUTH, client });
        detail = await response.text();
        status = response.status;
      } catch (error) {
        detail = String(error);
      }
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      if (!expect(status, detail, i) && samples.length < 5) {
        samples.push(`#${i} ${url} → ${status} ${detail.slice(0, 200)}`);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    client.close();
  }
  return { statuses, samples };
}

/** What came back on a raw connection. */
export interface RawOutcome {
  /** The status of the first response, or null when none came. */
  readonly status: number | null;
  /** Everything read, as latin1 text. */
  readonly text: string;
  /** True when the peer closed the connection (EOF or reset) within the time allowed. */
  readonly closed: boolean;
}

/**
 * Opens a connection to 127.0.0.1:`port`, writes `chunks` in order (with `gapMs` between
 * them), and reads until the peer closes or `timeoutMs` passes; the connection is closed
 * either way.
 */
export async function rawExchange(
  port: number,
  chunks: (string | Uint8Array)[],
  { gapMs = 0, timeoutMs = 5000 }: { gapMs?: number; timeoutMs?: number } = {},
): Promise<RawOutcome> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const encoder = new TextEncoder();
  const received: Uint8Array[] = [];
  let closed = false;
  const deadline = setTimeout(() => {
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }, timeoutMs);
  let finished = false;
  const reading = (async () => {
    const buffer = new Uint8Array(16 * 1024);
    try {
      for (;;) {
        const n = await conn.read(buffer);
        if (n === null) {
          closed = true;
          return;
        }
        received.push(buffer.slice(0, n));
      }
    } catch (error) {
      // A reset is the peer closing; our own close at the deadline is not.
      if (error instanceof Deno.errors.ConnectionReset) closed = true;
    } finally {
      finished = true;
    }
  })();
  try {
    for (const chunk of chunks) {
      if (finished) break;
      await conn.write(typeof chunk === "string" ? encoder.encode(chunk) : chunk);
      if (gapMs > 0) await new Promise((resolve) => setTimeout(resolve, gapMs));
    }
  } catch {
    // The peer closed while we were writing: what it answered is still read.
  }
  await reading;
  clearTimeout(deadline);
  try {
    conn.close();
  } catch {
    // Closed at the deadline or after EOF.
  }
  const text = received.map((c) => String.fromCharCode(...c)).join("");
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(text);
  return { status: status === null ? null : Number(status[1]), text, closed };
}
