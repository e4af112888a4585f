/**
 * A few thousand random requests (methods, paths, headers, bodies) through the whole proxy:
 * no 5xx of the proxy's own making and no crash. The upstream marks its answers, and answers
 * 5xx itself for some paths, so its 5xx pass through and are told apart.
 *
 * Run with `--allow-net=127.0.0.1 --allow-read=.,/tmp --allow-write=/tmp --allow-run=deno,ps
 * --allow-env tests/reliability_fuzz_test.ts` (npm: fast-check).
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { startApp, TOKEN } from "./helpers/reliability.ts";

const REQUESTS = 3000;
const CONCURRENCY = 20;

const method = fc.constantFrom(
  "GET",
  "HEAD",
  "POST",
  "PUT",
  "PATCH",
  "DELETE",
  "OPTIONS",
  "PROPFIND",
  "MKCOL",
  "X-CUSTOM",
);
const segment = fc.oneof(
  fc.constantFrom("app", "open", "status", "proxy", "healthz", "..", ".", "", "500", "%2e%2e"),
  fc.webSegment(),
  fc.string({ unit: "grapheme-ascii", maxLength: 8 }).map(encodeURIComponent),
);
const path = fc.array(segment, { maxLength: 5 }).map((s) => "/" + s.join("/"));
const headerName = fc.constantFrom(
  "x-anything",
  "accept",
  "accept-encoding",
  "cookie",
  "forwarded",
  "x-forwarded-for",
  "x-forwarded-host",
  "x-forwarded-proto",
  "connection",
  "te",
  "upgrade",
  "expect",
  "range",
  "if-none-match",
  "authorization",
  "content-type",
);
const headerValue = fc.string({ unit: "grapheme-ascii", maxLength: 40 })
  .map((v) => v.replace(/[\r\n\0]/g, "").trim());
const request = fc.record({
  method,
  path,
  query: fc.option(fc.webQueryParameters(), { nil: undefined }),
  headers: fc.dictionary(headerName, headerValue, { maxKeys: 5 }),
  token: fc.boolean(),
  body: fc.option(fc.uint8Array({ maxLength: 2048 }), { nil: undefined }),
});

Deno.test("random requests never get a 5xx from the proxy itself", async () => {
  const upstream = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    await req.body?.cancel();
    const status = req.url.includes("/500") ? 500 : 200;
    return new Response(status === 200 ? "fine" : "boom", {
      status,
      headers: { "x-from-upstream": "1" },
    });
  });
  const url = `http://127.0.0.1:${upstream.addr.port}`;
  try {
    await using proxy = await startApp([
      { name: "app", path: "/app", url },
      { name: "open", path: "/open", url, public: true },
      { name: "root", path: "/", url },
    ]);
    const samples = fc.sample(request, { numRuns: REQUESTS, seed: Date.now() % 2 ** 31 });
    const client = Deno.createHttpClient({});
    const failures: string[] = [];
    let next = 0;
    const worker = async () => {
      while (next < samples.length) {
        const r = samples[next++];
        const headers = new Headers();
        for (const [name, value] of Object.entries(r.headers)) {
          try {
            headers.set(name, value);
          } catch {
            // fetch refuses some values outright; the rest of the request still goes.
          }
        }
        if (r.token) headers.set("authorization", `Bearer ${TOKEN}`);
        const target = `${proxy.base}${r.path}${r.query ? `?${r.query}` : ""}`;
        const hasBody = r.body !== undefined && r.method !== "GET" && r.method !== "HEAD";
        try {
          const response = await fetch(target, {
            method: r.method,
            headers,
            body: hasBody ? r.body : undefined,
            client,
          });
          const text = await response.text();
          if (response.status >= 500 && response.headers.get("x-from-upstream") !== "1") {
            failures.push(
              `${r.method} ${r.path} ${JSON.stringify(r.headers)} → ${response.status} ${
                text.slice(0, 160)
              }`,
            );
          }
        } catch (error) {
          // Requests fetch itself refuses (forbidden headers, bad URLs) are the client's.
          if (!(error instanceof TypeError && !String(error).includes("connection"))) {
            failures.push(`${r.method} ${r.path} → ${String(error)}`);
          }
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    } finally {
      client.close();
    }
    assert.deepEqual(failures.slice(0, 10), [], `${failures.length} proxy 5xx or crashes`);
    const health = await fetch(`${proxy.base}/healthz`);
    assert.equal(await health.text(), "ok");
  } finally {
    await upstream.shutdown();
  }
});
