/**
 * Test rig for the request path: the real handler on a real `Deno.serve` (port 0), a
 * stand-in service manager, and raw HTTP requests for targets `fetch` would normalise.
 *
 * Tests using it need `--allow-net=127.0.0.1`.
 *
 * @module
 */

import {
  type GlobalConfig,
  GlobalSchema,
  type ServiceConfig,
  ServiceSchema,
} from "../../src/config/schema.ts";
import { type AccessRecord, createHandler, type HandlerOptions } from "../../src/proxy/handler.ts";
import { RouteTable } from "../../src/routing/table.ts";
import type { Lease, ServiceAcquirer } from "../../src/services/lease.ts";

/** The proxy's bearer token in tests. */
export const TOKEN = "proxy-token-for-tests";

/** `Authorization` headers carrying {@link TOKEN}. */
export const AUTH = { authorization: `Bearer ${TOKEN}` };

/** Listen options for servers on a free loopback port, without the banner. */
export const LOOPBACK = { hostname: "127.0.0.1", port: 0, onListen() {} } as const;

/** Global settings with every default and the test token. */
export function testGlobal(overrides: Partial<GlobalConfig> = {}): GlobalConfig {
  return { ...GlobalSchema.parse({ bearer_token: TOKEN }), docker_host: "", ...overrides };
}

/** A resolved `url:` service routed at `path` to `url`. */
export function urlService(
  name: string,
  path: string,
  url: string,
  overrides: Partial<ServiceConfig> = {},
): ServiceConfig {
  const parsed = ServiceSchema.parse({ name, path, url });
  return { ...parsed, idle_timeout: 60, response_timeout: 60, runtime: "url", ...overrides };
}

/**
 * A stand-in for the service manager (the `ServiceAcquirer` seam): leases each service's
 * `url` as its upstream and counts what the handler does with leases.
 */
export class StandInAcquirer implements ServiceAcquirer {
  /** Leases handed out. */
  acquired = 0;
  /** Calls of `release()`, duplicates included. */
  releases = 0;
  /** What leases report as cold-start wait. */
  coldStartMs: number | null = null;
  /** When set, `acquire` rejects with it. */
  failure: Error | null = null;

  acquire(service: ServiceConfig): Promise<Lease> {
    if (this.failure !== null) return Promise.reject(this.failure);
    this.acquired++;
    return Promise.resolve({
      upstream: new URL(service.url!),
      coldStartMs: this.coldStartMs,
      release: () => {
        this.releases++;
      },
    });
  }

  /** Resolves once `count` releases happened (or rejects after `ms`). */
  async releasesReach(count: number, ms = 3000): Promise<void> {
    const deadline = Date.now() + ms;
    while (this.releases < count) {
      if (Date.now() > deadline) throw new Error(`Only ${this.releases} of ${count} releases`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
}

/** A running proxy for a test; dispose it with `await using`. */
export interface TestProxy extends AsyncDisposable {
  /** `http://127.0.0.1:<port>` */
  readonly base: string;
  readonly port: number;
  readonly acquirer: StandInAcquirer;
  /** Access records written so far. */
  readonly records: AccessRecord[];
}

/** Starts the real handler on `Deno.serve` (port 0) in front of `services`. */
export function startProxy(
  services: ServiceConfig[],
  options: Partial<HandlerOptions> = {},
): TestProxy {
  const acquirer = new StandInAcquirer();
  const records: AccessRecord[] = [];
  const handler = createHandler({
    routes: new RouteTable(services),
    global: testGlobal(),
    services: acquirer,
    status: () => ({ services: services.map((s) => s.name) }),
    accessLog: (record) => records.push(record),
    ...options,
  });
  const server = Deno.serve(LOOPBACK, handler);
  return {
    base: `http://127.0.0.1:${server.addr.port}`,
    port: server.addr.port,
    acquirer,
    records,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

/** A response read off the wire. */
export interface RawResponse {
  readonly status: number;
  readonly head: string;
  readonly body: string;
}

/**
 * Sends `GET <target>` exactly as written (no URL normalisation) with `headers`, over a
 * fresh connection that is closed after the response.
 */
export async function rawGet(
  port: number,
  target: string,
  headers: Record<string, string> = {},
): Promise<RawResponse> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const lines = [`GET ${target} HTTP/1.1`, "Host: proxy.test", "Connection: close"];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  await conn.write(new TextEncoder().encode(lines.join("\r\n") + "\r\n\r\n"));
  const text = await new Response(conn.readable).text();
  const split = text.indexOf("\r\n\r\n");
  return {
    status: Number(text.slice(9, 12)),
    head: text.slice(0, split),
    body: text.slice(split + 4),
  };
}
