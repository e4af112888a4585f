/**
 * `forward()` against real upstream servers on port 0.
 *
 * Run with `--allow-net=127.0.0.1`.
 */

import assert from "node:assert/strict";
import { forward } from "../src/proxy/forward.ts";

const quiet = { hostname: "127.0.0.1", port: 0, onListen() {} };

/** An upstream `Deno.serve` on a free loopback port. */
function upstream(handler: Deno.ServeHandler<Deno.NetAddr>) {
  const server = Deno.serve(quiet, handler);
  return Object.assign(server, { base: `http://127.0.0.1:${server.addr.port}` });
}

/** A raw TCP upstream that answers every connection with `response` verbatim. */
function rawUpstream(response: string) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = (async () => {
    for await (const conn of listener) {
      await conn.read(new Uint8Array(16384));
      await conn.write(new TextEncoder().encode(response));
      conn.close();
    }
  })();
  return {
    base: `http://127.0.0.1:${listener.addr.port}`,
    async [Symbol.asyncDispose]() {
      listener.close();
      await served.catch(() => {});
    },
  };
}

Deno.test("forward streams method, body and query string byte for byte", async () => {
  await using server = upstream(async (req) => {
    const url = new URL(req.url);
    return Response.json({
      method: req.method,
      path: url.pathname,
      query: req.url.slice(req.url.indexOf("?")),
      body: await req.text(),
      encoding: req.headers.get("accept-encoding"),
    });
  });
  const query = "?q=1&x=%2F%2f&empty=&a+b=c%20d&k=~!*()";
  const request = new Request("http://proxy.test/x", { method: "PUT", body: "payload" });
  const response = await forward(request, `${server.base}/up${query}`, new Headers(), 5000);
  assert.equal(response.status, 200);
  assert.deepEqual(await response.json(), {
    method: "PUT",
    path: "/up",
    query,
    body: "payload",
    encoding: "identity",
  });
});

Deno.test("forward returns redirects instead of following them", async () => {
  await using server = upstream(() =>
    new Response(null, { status: 302, headers: { location: "/elsewhere" } })
  );
  const response = await forward(new Request("http://p/"), server.base + "/", new Headers(), 5000);
  assert.equal(response.status, 302);
  assert.equal(response.headers.get("location"), "/elsewhere");
  assert.equal(await response.text(), "");
});

Deno.test("forward drops hop-by-hop response headers", async () => {
  await using server = rawUpstream(
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\n" +
      "Keep-Alive: timeout=5\r\nProxy-Authenticate: Basic\r\nX-End: 2\r\nSet-Cookie: a=1\r\n" +
      "Set-Cookie: b=2\r\n\r\nok",
  );
  const response = await forward(new Request("http://p/"), server.base + "/", new Headers(), 5000);
  assert.equal(await response.text(), "ok");
  for (const name of ["connection", "x-hop", "keep-alive", "proxy-authenticate"]) {
    assert.equal(response.headers.get(name), null, name);
  }
  assert.equal(response.headers.get("x-end"), "2");
  assert.deepEqual(response.headers.getSetCookie(), ["a=1", "b=2"]);
});

Deno.test("forward passes compressed bodies through with matching headers", async () => {
  const plain = new TextEncoder().encode("compress me ".repeat(500));
  const gzipped = await new Response(
    new Blob([plain]).stream().pipeThrough(new CompressionStream("gzip")),
  ).bytes();
  await using server = upstream(() =>
    new Response(gzipped, { headers: { "content-encoding": "gzip", "content-type": "text/plain" } })
  );
  const headers = new Headers({ "accept-encoding": "gzip, br" });
  const response = await forward(new Request("http://p/"), server.base + "/", headers, 5000);
  const body = new Uint8Array(await response.arrayBuffer());
  assert.equal(response.headers.get("content-encoding"), "gzip");
  assert.equal(response.headers.get("content-length"), String(gzipped.length));
  assert.deepEqual(body, gzipped);
});

Deno.test("forward answers HEAD without a body", async () => {
  await using server = upstream((req) =>
    new Response(req.method === "HEAD" ? null : "12345", { headers: { "x-method": req.method } })
  );
  const response = await forward(
    new Request("http://p/", { method: "HEAD" }),
    server.base + "/",
    new Headers(),
    5000,
  );
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("x-method"), "HEAD");
  assert.equal(response.body, null);
});

Deno.test("forward answers 502 when the upstream refuses the connection", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  const response = await forward(
    new Request("http://p/"),
    `http://127.0.0.1:${port}/`,
    new Headers(),
    5000,
  );
  assert.equal(response.status, 502);
  assert.equal(response.headers.get("content-type"), "application/problem+json");
  assert.equal((await response.json()).status, 502);
});

Deno.test("forward answers 502 when the upstream resets before answering", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = (async () => {
    const conn = await listener.accept();
    await conn.read(new Uint8Array(4096));
    conn.close();
  })();
  const response = await forward(
    new Request("http://p/"),
    `http://127.0.0.1:${listener.addr.port}/`,
    new Headers(),
    5000,
  );
  await served;
  listener.close();
  assert.equal(response.status, 502);
  await response.body?.cancel();
});

Deno.test("forward answers 504 when the upstream sends no headers in time", async () => {
  const { promise: released, resolve: release } = Promise.withResolvers<void>();
  await using server = upstream(async () => {
    await released;
    return new Response("late");
  });
  const started = performance.now();
  const response = await forward(new Request("http://p/"), server.base + "/", new Headers(), 200);
  release();
  const elapsed = performance.now() - started;
  assert.equal(response.status, 504);
  assert.ok(elapsed >= 190 && elapsed < 2000, `took ${elapsed} ms`);
  await response.body?.cancel();
});

Deno.test("forward lets a slow body stream past the response timeout", async () => {
  await using server = upstream(() => {
    const chunks = ["a", "b", "c"];
    return new Response(
      new ReadableStream({
        async pull(controller) {
          await new Promise((resolve) => setTimeout(resolve, 150));
          const chunk = chunks.shift();
          if (chunk === undefined) controller.close();
          else controller.enqueue(new TextEncoder().encode(chunk));
        },
      }),
    );
  });
  const response = await forward(new Request("http://p/"), server.base + "/", new Headers(), 200);
  assert.equal(await response.text(), "abc");
});

Deno.test("forward errors only the stream whose upstream dies mid-body", async () => {
  await using server = upstream((req) => {
    if (new URL(req.url).pathname === "/healthy") return new Response("fine");
    let sent = false;
    return new Response(
      new ReadableStream({
        async pull(controller) {
          if (sent) {
            await new Promise((resolve) => setTimeout(resolve, 50));
            controller.error(new Error("upstream died"));
          } else {
            sent = true;
            controller.enqueue(new TextEncoder().encode("partial"));
          }
        },
      }),
    );
  });
  const dying = await forward(new Request("http://p/"), server.base + "/dies", new Headers(), 5000);
  const healthy = await forward(
    new Request("http://p/"),
    server.base + "/healthy",
    new Headers(),
    5000,
  );
  assert.equal(dying.status, 200);
  await assert.rejects(dying.text());
  assert.equal(await healthy.text(), "fine");
});
