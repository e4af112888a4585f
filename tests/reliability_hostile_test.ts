/**
 * Hostile input over raw TCP. Each probe gets a 4xx (or, where `Deno.serve` itself refuses
 * the bytes, a 400 and a closed connection), never reaches the upstream in a form it could
 * misread, and the proxy keeps serving everyone else — including while slowloris
 * connections trickle their headers (Deno.serve offers no header timeout to close them).
 *
 * Run with `--allow-net=127.0.0.1 --allow-read=.,/tmp --allow-write=/tmp --allow-run=deno,ps
 * --allow-env tests/reliability_hostile_test.ts`.
 */

import assert from "node:assert/strict";
import { AUTH, rawExchange, startApp, TOKEN } from "./helpers/reliability.ts";

const LOOPBACK = { hostname: "127.0.0.1", port: 0, onListen() {} } as const;
const HEAD = `Host: proxy.test\r\nConnection: close\r\nAuthorization: Bearer ${TOKEN}\r\n`;

/** What the upstream saw: method, path and framing headers of every request. */
interface Seen {
  readonly line: string;
  readonly contentLength: string | null;
  readonly transferEncoding: string | null;
  readonly body: string;
}

function recordingUpstream() {
  const seen: Seen[] = [];
  let upgrades = 0;
  const server = Deno.serve(LOOPBACK, async (request) => {
    if (request.headers.get("upgrade")?.toLowerCase() === "websocket") {
      upgrades++;
      const { socket, response } = Deno.upgradeWebSocket(request);
      socket.onmessage = (event) => socket.send(event.data);
      return response;
    }
    const url = request.url;
    seen.push({
      line: `${request.method} ${url.slice(url.indexOf("/", 8))}`,
      contentLength: request.headers.get("content-length"),
      transferEncoding: request.headers.get("transfer-encoding"),
      body: await request.text(),
    });
    return new Response("upstream");
  });
  return Object.assign(server, {
    url: `http://127.0.0.1:${server.addr.port}`,
    seen,
    upgrades: () => upgrades,
  });
}

async function withProxy(
  fn: (port: number, upstream: ReturnType<typeof recordingUpstream>) => Promise<void>,
) {
  await using upstream = recordingUpstream();
  await using proxy = await startApp([
    { name: "app", path: "/app", url: upstream.url },
    { name: "open", path: "/open", url: upstream.url, public: true },
  ]);
  await fn(proxy.port, upstream);
}

async function healthy(port: number): Promise<void> {
  const response = await fetch(`http://127.0.0.1:${port}/app/health`, { headers: AUTH });
  assert.equal(response.status, 200);
  assert.equal(await response.text(), "upstream");
}

/** Requests `Deno.serve` (hyper) refuses itself: 400 and the connection closed. */
const REFUSED_BY_THE_PARSER: Record<string, string> = {
  "a 1 MB header": `GET /app/x HTTP/1.1\r\n${HEAD}X-Big: ${"a".repeat(1024 * 1024)}\r\n\r\n`,
  "2,000 headers": `GET /app/x HTTP/1.1\r\n${HEAD}${"X-H: v\r\n".repeat(2000)}\r\n`,
  "an invalid method": `G(T /app/x HTTP/1.1\r\n${HEAD}\r\n`,
  "Content-Length with Transfer-Encoding": `POST /app/x HTTP/1.1\r\n${HEAD}` +
    "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /app/smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
  "Transfer-Encoding with Content-Length": `POST /app/x HTTP/1.1\r\n${HEAD}` +
    "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
  "two different Content-Lengths": `POST /app/x HTTP/1.1\r\n${HEAD}` +
    "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
  "an obs-folded header": `GET /app/x HTTP/1.1\r\n${HEAD}X-Folded: one\r\n two\r\n\r\n`,
  "an obs-folded Transfer-Encoding": `POST /app/x HTTP/1.1\r\n${HEAD}` +
    "Transfer-Encoding:\r\n chunked\r\nContent-Length: 5\r\n\r\nhello",
  "an unknown Transfer-Encoding":
    `POST /app/x HTTP/1.1\r\n${HEAD}Transfer-Encoding: xchunked\r\n\r\nhello`,
  "a space before the colon": `POST /app/x HTTP/1.1\r\n${HEAD}Content-Length : 5\r\n\r\nhello`,
  "a NUL byte in the path": `GET /app/x\0y HTTP/1.1\r\n${HEAD}\r\n`,
  "a NUL byte in a header": `GET /app/x HTTP/1.1\r\n${HEAD}X-N: a\0b\r\n\r\n`,
  "a 100 kB URL": `GET /app/${"x".repeat(100_000)} HTTP/1.1\r\n${HEAD}\r\n`,
  "two Host headers": `GET /app/x HTTP/1.1\r\n${HEAD}Host: other\r\n\r\n`,
  "an unknown HTTP version": `GET /app/x HTTP/9.9\r\n${HEAD}\r\n`,
  "a negative Content-Length": `POST /app/x HTTP/1.1\r\n${HEAD}Content-Length: -1\r\n\r\nhello`,
  "a TLS handshake on the plain port": "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
};

Deno.test("requests the HTTP parser refuses get 400 and a closed connection", async () => {
  await withProxy(async (port, upstream) => {
    for (const [name, request] of Object.entries(REFUSED_BY_THE_PARSER)) {
      const outcome = await rawExchange(port, [request]);
      assert.equal(outcome.status, 400, `${name}: ${outcome.text.slice(0, 200)}`);
      assert.ok(outcome.closed, `${name}: connection left open`);
      await healthy(port);
    }
    const count = Object.keys(REFUSED_BY_THE_PARSER).length;
    assert.deepEqual(upstream.seen.map((s) => s.line), Array(count).fill("GET /health"));
  });
});

Deno.test("the same Content-Length twice is one body, forwarded once", async () => {
  await withProxy(async (port, upstream) => {
    const outcome = await rawExchange(port, [
      `POST /app/x HTTP/1.1\r\n${HEAD}Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello`,
    ]);
    assert.equal(outcome.status, 200);
    assert.deepEqual(upstream.seen, [
      { line: "POST /x", contentLength: "5", transferEncoding: null, body: "hello" },
    ]);
  });
});

Deno.test("path traversal, plain and encoded, never leaves the route or skips auth", async () => {
  await withProxy(async (port, upstream) => {
    const cases: [target: string, token: boolean, status: number, upstreamLine: string | null][] = [
      // Dot segments resolve before routing: this is /open/x, a public route.
      ["/app/../open/x", false, 200, "GET /x"],
      // …and a public prefix cannot be used to reach a protected one without the token.
      ["/open/../app/x", false, 401, null],
      ["/open/%2e%2e/app/x", false, 401, null],
      ["/open/%2E%2E/%2e%2E/app/x", false, 401, null],
      ["/open/..%2fapp/x", false, 200, "GET /..%2Fapp/x"],
      ["/app/../../../etc/passwd", true, 404, null],
      ["/app/%2e%2e/%2e%2e/etc/passwd", true, 404, null],
      ["/app/x%00y", true, 400, null],
      ["/app/..%5c..%5cetc", true, 200, "GET /..%5C..%5Cetc"],
    ];
    for (const [target, token, status, line] of cases) {
      const before = upstream.seen.length;
      const head = token ? HEAD : HEAD.replace(/Authorization:[^\r]*\r\n/, "");
      const outcome = await rawExchange(port, [`GET ${target} HTTP/1.1\r\n${head}\r\n`]);
      assert.equal(outcome.status, status, `${target}: ${outcome.text.slice(0, 200)}`);
      const forwarded = upstream.seen.slice(before).map((s) => s.line);
      assert.deepEqual(forwarded, line === null ? [] : [line], target);
      for (const seen of forwarded) assert.ok(!seen.includes("/../"), `${target} → ${seen}`);
    }
  });
});

Deno.test("CONNECT and TRACE are refused by the proxy, not answered with its own 5xx", async () => {
  await withProxy(async (port) => {
    for (
      const request of [
        `CONNECT evil.example:443 HTTP/1.1\r\n${HEAD}\r\n`,
        `TRACE /app/x HTTP/1.1\r\n${HEAD}\r\n`,
      ]
    ) {
      const outcome = await rawExchange(port, [request]);
      assert.ok(
        outcome.status !== null && outcome.status >= 400 && outcome.status < 500,
        `${request.split(" ")[0]} → ${outcome.status}`,
      );
    }
    await healthy(port);
  });
});

Deno.test("WebSocket upgrades with a bad handshake get 4xx before the upstream is contacted", async () => {
  await withProxy(async (port, upstream) => {
    const ws = (extra: string) =>
      `GET /app/ws HTTP/1.1\r\n${HEAD.replace("Connection: close", "Connection: Upgrade")}` +
      `Upgrade: websocket\r\n${extra}\r\n`;
    const cases: [name: string, request: string, status: number][] = [
      ["a bad key", ws("Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: bad\r\n"), 400],
      ["no key", ws("Sec-WebSocket-Version: 13\r\n"), 400],
      [
        "version 8",
        ws("Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"),
        426,
      ],
    ];
    for (const [name, request, status] of cases) {
      const outcome = await rawExchange(port, [request], { timeoutMs: 1000 });
      assert.equal(outcome.status, status, `${name}: ${outcome.text.slice(0, 300)}`);
    }
    assert.equal(upstream.upgrades(), 0, "the upstream was contacted for a bad handshake");
    await healthy(port);
  });
});

Deno.test("many wrong tokens are all refused, and the right one still works", async () => {
  await withProxy(async (port, upstream) => {
    const wrong = [
      "",
      "Bearer ",
      "Bearer x",
      `Bearer ${TOKEN.slice(0, -1)}`,
      `Bearer ${TOKEN}x`,
      `Bearer ${TOKEN.toUpperCase()}`,
      `Basic ${btoa(`user:${TOKEN}`)}`,
      `Bearer ${"a".repeat(8192)}`,
      `bearer  ${TOKEN} extra`,
    ];
    const results = await Promise.all(Array.from({ length: 500 }, async (_, i) => {
      const response = await fetch(`http://127.0.0.1:${port}/app/x`, {
        headers: { authorization: wrong[i % wrong.length] },
      });
      await response.body?.cancel();
      return response.status;
    }));
    assert.deepEqual([...new Set(results)], [401]);
    assert.equal(upstream.seen.length, 0);
    await healthy(port);
  });
});

// Deno.serve has no header-read timeout (denoland/deno#3515): a connection that trickles its
// headers is held for as long as it keeps trickling. What the proxy does guarantee, and what
// this test checks, is isolation: trickling connections cost everyone else nothing, and each
// is still answered correctly (auth included) once its headers are complete.
Deno.test("slowloris connections do not delay others and are answered once complete", async () => {
  await withProxy(async (port, upstream) => {
    const trickle = `GET /app/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${
      "X-Slow: y\r\n".repeat(20)
    }\r\n`;
    const slow = Array.from(
      { length: 20 },
      () => rawExchange(port, trickle.split(""), { gapMs: 10, timeoutMs: 15_000 }),
    );
    for (let i = 0; i < 50; i++) {
      const t = performance.now();
      await healthy(port);
      assert.ok(performance.now() - t < 500, "slowloris connections delayed a normal request");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const outcomes = await Promise.all(slow);
    for (const outcome of outcomes) {
      assert.equal(outcome.status, 401, "a trickled request without a token must get 401");
    }
    assert.ok(
      upstream.seen.every((s) => !s.line.includes("/x")),
      "an unauthenticated trickle was forwarded",
    );
  });
});
