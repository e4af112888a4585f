/**
 * The request path end to end: the real handler, called directly and behind `Deno.serve`,
 * in front of real upstream servers.
 *
 * Run with `--allow-net=127.0.0.1 --allow-read=/tmp --allow-write=/tmp`.
 */

import assert from "node:assert/strict";
import { createHandler } from "../src/proxy/handler.ts";
import { RouteTable } from "../src/routing/table.ts";
import { ServiceUnavailableError } from "../src/services/lease.ts";
import {
  AUTH,
  LOOPBACK,
  rawGet,
  StandInAcquirer,
  startProxy,
  testGlobal,
  TOKEN,
  urlService,
} from "./helpers/proxy.ts";

/** An upstream that echoes what it received as JSON. */
function echoUpstream() {
  const server = Deno.serve(LOOPBACK, async (req) => {
    const target = req.url.slice(req.url.indexOf("/", 8));
    return Response.json({
      method: req.method,
      target,
      headers: Object.fromEntries(req.headers),
      body: await req.text(),
    });
  });
  return Object.assign(server, { url: `http://127.0.0.1:${server.addr.port}` });
}

/** Handler info for direct calls: a peer address and an already completed response. */
function info(completed: Promise<void> = Promise.resolve()): Deno.ServeHandlerInfo {
  return { remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 50000 }, completed };
}

Deno.test("handler answers /healthz without a token", async () => {
  const handler = createHandler({
    routes: new RouteTable([]),
    global: testGlobal(),
    services: new StandInAcquirer(),
    status: () => ({}),
  });
  const response = await handler(new Request("http://p/healthz"), info());
  assert.equal(response.status, 200);
  assert.equal(await response.text(), "ok");
});

Deno.test("handler serves ACME challenges from memory and from the webroot", async () => {
  const webroot = await Deno.makeTempDir();
  try {
    // certbot's webroot layout: <webroot>/.well-known/acme-challenge/<token>
    await Deno.mkdir(`${webroot}/.well-known/acme-challenge`, { recursive: true });
    await Deno.writeTextFile(`${webroot}/.well-known/acme-challenge/from-file_1`, "file-answer");
    const handler = createHandler({
      routes: new RouteTable([]),
      global: testGlobal({ acme_webroot: webroot }),
      services: new StandInAcquirer(),
      status: () => ({}),
      acmeChallenge: (token) => token === "in-memory" ? "memory-answer" : undefined,
    });
    const get = (path: string) =>
      handler(new Request(`http://p/.well-known/acme-challenge/${path}`), info());
    const memory = await get("in-memory");
    assert.equal(await memory.text(), "memory-answer");
    const file = await get("from-file_1");
    assert.equal(await file.text(), "file-answer");
    for (const bad of ["missing", "a.b", "..%2Ffrom-file_1", "x%2F..%2F..%2Fetc%2Fpasswd", ""]) {
      const response = await get(bad);
      assert.equal(response.status, 404, bad);
      await response.body?.cancel();
    }
  } finally {
    await Deno.remove(webroot, { recursive: true });
  }
});

Deno.test("handler answers /proxy/status and /status only with the token", async () => {
  const handler = createHandler({
    routes: new RouteTable([]),
    global: testGlobal(),
    services: new StandInAcquirer(),
    status: () => ({ version: "test" }),
  });
  for (const path of ["/proxy/status", "/status"]) {
    const denied = await handler(new Request(`http://p${path}`), info());
    assert.equal(denied.status, 401);
    await denied.body?.cancel();
    const allowed = await handler(new Request(`http://p${path}`, { headers: AUTH }), info());
    assert.equal(allowed.status, 200);
    assert.deepEqual(await allowed.json(), { version: "test" });
  }
});

Deno.test("handler requires the token before acquiring, except on public routes", async () => {
  await using upstream = echoUpstream();
  await using proxy = startProxy([
    urlService("priv", "/priv", upstream.url),
    urlService("pub", "/pub", upstream.url, { public: true }),
  ]);
  const missing = await fetch(`${proxy.base}/priv/x`);
  assert.equal(missing.status, 401);
  assert.equal(missing.headers.get("www-authenticate"), "Bearer");
  await missing.body?.cancel();
  const wrong = await fetch(`${proxy.base}/priv/x`, { headers: { authorization: "Bearer nope" } });
  assert.equal(wrong.status, 401);
  await wrong.body?.cancel();
  const unrouted = await fetch(`${proxy.base}/nowhere`);
  assert.equal(unrouted.status, 401, "no route is not disclosed without the token");
  await unrouted.body?.cancel();
  assert.equal(proxy.acquirer.acquired, 0);

  const right = await fetch(`${proxy.base}/priv/x?a=1`, { headers: AUTH });
  assert.equal(right.status, 200);
  const seen = await right.json();
  assert.equal(seen.target, "/x?a=1");
  assert.equal(seen.headers.authorization, undefined, "the proxy token never reaches upstream");

  const open = await fetch(`${proxy.base}/pub/y`);
  assert.equal(open.status, 200);
  assert.equal((await open.json()).target, "/y");

  const none = await fetch(`${proxy.base}/nowhere`, { headers: AUTH });
  assert.equal(none.status, 404);
  assert.equal(none.headers.get("content-type"), "application/problem+json");
  await none.body?.cancel();
  await proxy.acquirer.releasesReach(2);
});

Deno.test("handler sends the service's own token upstream", async () => {
  await using upstream = echoUpstream();
  await using proxy = startProxy([
    urlService("svc", "/svc", upstream.url, { auth_token: "service-token" }),
  ]);
  const response = await fetch(`${proxy.base}/svc/`, { headers: AUTH });
  const seen = await response.json();
  assert.equal(seen.headers.authorization, "Bearer service-token");
  assert.ok(!JSON.stringify(seen).includes(TOKEN));
});

Deno.test("handler resists routing attacks", async () => {
  await using upstream = echoUpstream();
  await using proxy = startProxy([
    urlService("priv", "/priv", upstream.url),
    urlService("pub", "/pub", upstream.url, { public: true }),
    urlService("app", "/app", upstream.url, { public: true }),
  ]);
  const target = async (path: string, headers = {}) => {
    const response = await rawGet(proxy.port, path, headers);
    return response.status === 200 ? JSON.parse(response.body).target : response.status;
  };
  // Dot-segments, plain or encoded, resolve before routing: /priv keeps its token rule.
  assert.equal(await target("/pub/../priv/secret"), 401);
  assert.equal(await target("/pub/%2e%2e/priv/secret"), 401);
  assert.equal(await target("/pub/.%2E/priv/secret"), 401);
  assert.equal(await target("/pub/../priv/secret", AUTH), "/secret");
  // An encoded slash is not a separator: this stays inside /pub.
  assert.equal(await target("/pub/..%2Fpriv/secret"), "/..%2Fpriv/secret");
  assert.equal(await target("/pub%2F..%2Fpriv"), 401, "no /pub%2F.. route exists");
  // Duplicate slashes collapse.
  assert.equal(await target("//pub//x//y"), "/x/y");
  assert.equal(await target("//priv/x"), 401);
  // Whole segments only.
  assert.equal(await target("/apple", AUTH), 404);
  assert.equal(await target("/app"), "/");
  assert.equal(await target("/app/le?q=%2F..&x"), "/le?q=%2F..&x");
  // Malformed escapes are refused outright.
  assert.equal(await target("/pub/%00"), 400);
  assert.equal(await target("/pub/%zz"), 400);
  assert.equal(await target("/pub/%2"), 400);
});

Deno.test("handler answers 503 with Retry-After when the service cannot start", async () => {
  await using proxy = startProxy([urlService("svc", "/svc", "http://127.0.0.1:9")]);
  proxy.acquirer.failure = new ServiceUnavailableError("svc", "Service svc exited with code 3.", 7);
  const response = await fetch(`${proxy.base}/svc/`, { headers: AUTH });
  assert.equal(response.status, 503);
  assert.equal(response.headers.get("retry-after"), "7");
  const body = await response.json();
  assert.equal(body.detail, "Service svc exited with code 3.");
  assert.equal(body.status, 503);
});

Deno.test("handler answers 502 for a dead upstream and releases the lease", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const dead = `http://127.0.0.1:${listener.addr.port}`;
  listener.close();
  await using proxy = startProxy([urlService("svc", "/svc", dead)]);
  const response = await fetch(`${proxy.base}/svc/`, { headers: AUTH });
  assert.equal(response.status, 502);
  await response.body?.cancel();
  await proxy.acquirer.releasesReach(1);
});

Deno.test("handler answers 504 for a hanging upstream", async () => {
  const { promise: released, resolve: release } = Promise.withResolvers<void>();
  await using upstream = Deno.serve(LOOPBACK, async () => {
    await released;
    return new Response("late");
  });
  await using proxy = startProxy([
    urlService("svc", "/svc", `http://127.0.0.1:${upstream.addr.port}`, { response_timeout: 0.2 }),
  ]);
  const response = await fetch(`${proxy.base}/svc/`, { headers: AUTH });
  release();
  assert.equal(response.status, 504);
  await response.body?.cancel();
});

Deno.test("handler adds Server-Timing after a cold start", async () => {
  await using upstream = echoUpstream();
  await using proxy = startProxy([urlService("svc", "/svc", upstream.url)]);
  const warm = await fetch(`${proxy.base}/svc/`, { headers: AUTH });
  assert.equal(warm.headers.get("server-timing"), null);
  await warm.body?.cancel();
  proxy.acquirer.coldStartMs = 1234.4;
  const cold = await fetch(`${proxy.base}/svc/`, { headers: AUTH });
  assert.equal(cold.headers.get("server-timing"), "cold-start;dur=1234");
  await cold.body?.cancel();
});

Deno.test("handler sets forwarded headers and drops hop-by-hop ones", async () => {
  await using upstream = echoUpstream();
  await using proxy = startProxy([urlService("svc", "/svc", upstream.url)]);
  const response = await rawGet(proxy.port, "/svc/h", {
    ...AUTH,
    "X-Forwarded-For": "6.6.6.6",
    "Forwarded": "for=6.6.6.6",
    "Keep-Alive": "timeout=5",
    "X-Drop-Me": "1",
    "Connection": "close, X-Drop-Me",
    "X-Keep": "2",
  });
  const seen = JSON.parse(response.body).headers;
  assert.equal(seen["x-forwarded-for"], "127.0.0.1");
  assert.equal(seen["x-forwarded-proto"], "http");
  assert.equal(seen["x-forwarded-host"], "proxy.test");
  assert.equal(seen["forwarded"], "for=127.0.0.1;host=proxy.test;proto=http");
  assert.equal(seen["x-drop-me"], undefined);
  assert.equal(seen["keep-alive"], undefined);
  assert.equal(seen["x-keep"], "2");
});

Deno.test("handler answers HEAD without a body", async () => {
  await using upstream = Deno.serve(
    LOOPBACK,
    (req) =>
      new Response(req.method === "HEAD" ? null : "body", { headers: { "x-method": req.method } }),
  );
  await using proxy = startProxy([
    urlService("svc", "/", `http://127.0.0.1:${upstream.addr.port}`),
  ]);
  const response = await fetch(`${proxy.base}/x`, { method: "HEAD", headers: AUTH });
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("x-method"), "HEAD");
  assert.equal(await response.text(), "");
});

Deno.test("handler releases the lease once, when the streamed body is finished", async () => {
  const { promise: finish, resolve: finishBody } = Promise.withResolvers<void>();
  await using upstream = Deno.serve(LOOPBACK, () =>
    new Response(
      new ReadableStream({
        async start(controller) {
          controller.enqueue(new TextEncoder().encode("first,"));
          await finish;
          controller.enqueue(new TextEncoder().encode("last"));
          controller.close();
        },
      }),
    ));
  await using proxy = startProxy([
    urlService("svc", "/", `http://127.0.0.1:${upstream.addr.port}`),
  ]);
  const response = await fetch(`${proxy.base}/stream`, { headers: AUTH });
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  assert.equal((await reader.read()).value, "first,");
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(proxy.acquirer.releases, 0, "held while the body streams");
  finishBody();
  let rest = "";
  for (let r = await reader.read(); !r.done; r = await reader.read()) rest += r.value;
  assert.equal(rest, "last");
  await proxy.acquirer.releasesReach(1);
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(proxy.acquirer.releases, 1);
  assert.equal(proxy.records.length, 1);
  const [record] = proxy.records;
  assert.equal(record.method, "GET");
  assert.equal(record.path, "/stream");
  assert.equal(record.service, "svc");
  assert.equal(record.status, 200);
  assert.equal(record.client, "127.0.0.1");
  assert.equal(record.coldStartMs, null);
  assert.ok(record.durationMs >= 100, `duration ${record.durationMs}`);
  assert.ok(!JSON.stringify(proxy.records).includes(TOKEN));
});

Deno.test("handler releases the lease when the client cancels an endless stream", async () => {
  const cancelled = Promise.withResolvers<void>();
  await using upstream = Deno.serve(LOOPBACK, () => {
    let timer: ReturnType<typeof setInterval>;
    return new Response(
      new ReadableStream({
        start(controller) {
          timer = setInterval(
            () => controller.enqueue(new TextEncoder().encode("data: x\n\n")),
            20,
          );
        },
        cancel() {
          clearInterval(timer);
          cancelled.resolve();
        },
      }),
      { headers: { "content-type": "text/event-stream" } },
    );
  });
  await using proxy = startProxy([
    urlService("svc", "/", `http://127.0.0.1:${upstream.addr.port}`),
  ]);
  const response = await fetch(`${proxy.base}/events`, { headers: AUTH });
  const reader = response.body!.getReader();
  await reader.read();
  await reader.cancel();
  await proxy.acquirer.releasesReach(1);
  await cancelled.promise;
});

Deno.test("handler delivers the first SSE event before the upstream finishes", async () => {
  const { promise: end, resolve: endStream } = Promise.withResolvers<void>();
  await using upstream = Deno.serve(LOOPBACK, () =>
    new Response(
      new ReadableStream({
        async start(controller) {
          controller.enqueue(new TextEncoder().encode("data: one\n\n"));
          await end;
          controller.close();
        },
      }),
      { headers: { "content-type": "text/event-stream" } },
    ));
  await using proxy = startProxy([
    urlService("svc", "/", `http://127.0.0.1:${upstream.addr.port}`),
  ]);
  const response = await fetch(`${proxy.base}/events`, { headers: AUTH });
  assert.equal(response.headers.get("content-type"), "text/event-stream");
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  const first = await Promise.race([
    reader.read(),
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error("no event yet")), 2000)),
  ]);
  assert.equal(first.value, "data: one\n\n");
  endStream();
  assert.equal((await reader.read()).done, true);
});

Deno.test("handler streams 200 MB up and down in flat memory", async () => {
  const MB = 1024 * 1024;
  const chunk = new Uint8Array(64 * 1024).fill(97);
  /** A body of `size` bytes made on the fly. */
  const generate = (size: number) => {
    let sent = 0;
    return new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= size) return controller.close();
        controller.enqueue(chunk.slice());
        sent += chunk.length;
      },
    });
  };
  /** Counts a body's bytes without keeping them. */
  const count = async (body: ReadableStream<Uint8Array>) => {
    let total = 0;
    for await (const part of body) total += part.length;
    return total;
  };
  await using upstream = Deno.serve(
    LOOPBACK,
    async (req) =>
      req.method === "POST"
        ? new Response(String(await count(req.body!)))
        : new Response(generate(Number(req.url.slice(req.url.lastIndexOf("/") + 1)))),
  );
  await using proxy = startProxy([
    urlService("svc", "/", `http://127.0.0.1:${upstream.addr.port}`),
  ]);
  /** Sends `size` bytes down and then up through the proxy. */
  const roundTrip = async (size: number) => {
    const down = await fetch(`${proxy.base}/down/${size}`, { headers: AUTH });
    assert.equal(await count(down.body!), size);
    const up = await fetch(`${proxy.base}/up`, {
      method: "POST",
      headers: AUTH,
      body: generate(size),
    });
    assert.equal(await up.text(), String(size));
  };
  // The client and upstream in this process make garbage too: measure after a warm-up.
  await roundTrip(32 * MB);
  const before = Deno.memoryUsage().rss;
  await roundTrip(200 * MB);
  const growth = (Deno.memoryUsage().rss - before) / MB;
  assert.ok(growth < 50, `rss grew ${growth.toFixed(1)} MB`);
});

/**
 * A stand-in manager for a managed service whose process died unnoticed: it leases the dead
 * upstream until `recheck` is called, then a live one.
 */
class DiedUnnoticed extends StandInAcquirer {
  rechecks = 0;
  constructor(readonly dead: string, readonly live: string) {
    super();
  }
  override acquire(service: Parameters<StandInAcquirer["acquire"]>[0]) {
    const url = this.rechecks === 0 ? this.dead : this.live;
    return super.acquire({ ...service, url });
  }
  recheck(): Promise<void> {
    this.rechecks++;
    return Promise.resolve();
  }
}

Deno.test("a refused bodiless request to a managed service is re-checked and retried once", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const dead = `http://127.0.0.1:${listener.addr.port}`;
  listener.close();
  await using upstream = echoUpstream();
  const acquirer = new DiedUnnoticed(dead, upstream.url);
  const service = { ...urlService("svc", "/svc", dead), runtime: "process" as const };
  await using proxy = startProxy([service], { services: acquirer });
  const response = await fetch(`${proxy.base}/svc/x?q=1`, { headers: AUTH });
  assert.equal(response.status, 200);
  assert.equal((await response.json()).target, "/x?q=1");
  assert.equal(acquirer.rechecks, 1);
  await acquirer.releasesReach(2); // the dead lease and the live one

  // A body cannot be sent twice: a refused upload is a 502, with no retry.
  acquirer.rechecks = 0;
  const upload = await fetch(`${proxy.base}/svc/x`, { method: "POST", headers: AUTH, body: "x" });
  assert.equal(upload.status, 502);
  await upload.body?.cancel();
  assert.equal(acquirer.rechecks, 0);
});
