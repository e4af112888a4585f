/**
 * The ceiling of each upstream client: a `Deno.serve` that forwards every request to one
 * upstream and returns its response as is — no routing, auth, header work or logging. With
 * `fetch` (the default) it is the benchmark's reference; with `pool` it uses the proxy's
 * pooled HTTP/1.1 transport instead (`bench/transport.ts` compares the two).
 *
 * Run: `deno run --allow-net=127.0.0.1 bench/bare_forwarder.ts <port> <upstream origin> [fetch|pool]`
 *
 * @module
 */

import { Http1Client, httpTarget } from "../src/proxy/transport/client.ts";
import { Pool } from "../src/proxy/transport/pool.ts";

const [port, upstream, mode = "fetch"] = Deno.args;
const client = new Http1Client(new Pool({ maxIdlePerOrigin: 256, idleTimeoutMs: 30_000 }));

function pathOf(request: Request): string {
  const url = request.url;
  return url.slice(url.indexOf("/", url.indexOf("//") + 2));
}

Deno.serve(
  { hostname: "127.0.0.1", port: Number(port), onListen() {} },
  mode === "pool"
    ? (request) =>
      client.send(request, httpTarget(upstream + pathOf(request))!, request.headers, 30_000)
        .catch(() => new Response(null, { status: 502 }))
    : (request) =>
      fetch(upstream + pathOf(request), {
        method: request.method,
        headers: request.headers,
        body: request.body,
        redirect: "manual",
      }),
);
