/**
 * Faults on the upstream side and the client side: each breaks one exchange only, and the
 * proxy goes on serving.
 *
 * Run with `--allow-net=127.0.0.1 --allow-read=.,/tmp --allow-write=/tmp --allow-run=deno,ps
 * --allow-env tests/reliability_faults_test.ts`.
 */

import assert from "node:assert/strict";
import { waitFor } from "./helpers/fixture_service.ts";
import { AUTH, hammer, killableCommand, startApp } from "./helpers/reliability.ts";
import { tcpUpstream } from "./helpers/tcp_upstream.ts";

const LOOPBACK = { hostname: "127.0.0.1", port: 0, onListen() {} } as const;
const MiB = 1024 * 1024;

/** A plain upstream answering `ok`. */
function okUpstream() {
  const server = Deno.serve(LOOPBACK, () => new Response("ok"));
  return Object.assign(server, { url: `http://127.0.0.1:${server.addr.port}` });
}

async function ok(base: string, path: string): Promise<number> {
  const response = await fetch(base + path, { headers: AUTH });
  await response.body?.cancel();
  return response.status;
}

Deno.test("an upstream closing mid-response errors that stream only", async () => {
  await using plain = okUpstream();
  await using broken = tcpUpstream(async (conn) => {
    await conn.read(new Uint8Array(4096));
    const head = "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n";
    await conn.write(new TextEncoder().encode(head + "x".repeat(1000)));
    conn.close();
  });
  await using proxy = await startApp([
    { name: "broken", path: "/broken", url: broken.url },
    { name: "plain", path: "/plain", url: plain.url },
  ]);
  for (let round = 0; round < 3; round++) {
    const response = await fetch(`${proxy.base}/broken/x`, { headers: AUTH });
    assert.equal(response.status, 200);
    await assert.rejects(response.text());
    assert.equal(await ok(proxy.base, "/plain/x"), 200);
  }
  await waitFor("leases to be released", () => proxy.service("broken").in_flight === 0, 3000);
});

Deno.test("a hanging upstream gets 504 after the response timeout; other routes unaffected", async () => {
  await using plain = okUpstream();
  await using hanging = tcpUpstream(async (conn) => {
    await conn.read(new Uint8Array(4096));
    await new Promise((resolve) => setTimeout(resolve, 3000));
  });
  await using proxy = await startApp([
    { name: "hanging", path: "/hang", url: hanging.url, response_timeout: 1 },
    { name: "plain", path: "/plain", url: plain.url },
  ]);
  const started = performance.now();
  const slow = fetch(`${proxy.base}/hang/x`, { headers: AUTH });
  for (let i = 0; i < 20; i++) {
    const t = performance.now();
    assert.equal(await ok(proxy.base, "/plain/x"), 200);
    assert.ok(performance.now() - t < 500, "a request elsewhere waited on the hanging one");
  }
  const response = await slow;
  const elapsed = performance.now() - started;
  assert.equal(response.status, 504);
  await response.body?.cancel();
  assert.ok(elapsed >= 950 && elapsed < 2500, `504 after ${Math.round(elapsed)} ms`);
});

Deno.test("an upload to a slow reader is paced by backpressure, not buffered", async () => {
  const TOTAL = 32 * MiB;
  const CHUNK = 64 * 1024;
  let received = 0;
  const stalled = Promise.withResolvers<void>();
  const resume = Promise.withResolvers<void>();
  const upstream = Deno.serve(LOOPBACK, async (request) => {
    const reader = request.body!.getReader();
    stalled.resolve();
    await resume.promise;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      received += value.length;
    }
    return new Response(String(received));
  });
  try {
    await using proxy = await startApp([
      { name: "sink", path: "/sink", url: `http://127.0.0.1:${upstream.addr.port}` },
    ]);
    let produced = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (produced >= TOTAL) return controller.close();
        produced += CHUNK;
        controller.enqueue(new Uint8Array(CHUNK));
      },
    }, { highWaterMark: 0 });
    const rssBefore = Deno.memoryUsage().rss;
    const upload = fetch(`${proxy.base}/sink/up`, {
      method: "POST",
      headers: AUTH,
      body,
    });
    await stalled.promise;
    // The upstream reads nothing for a while: the client must be held back.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const producedWhileStalled = produced;
    const rssStalled = Deno.memoryUsage().rss;
    resume.resolve();
    const response = await upload;
    assert.equal(response.status, 200);
    assert.equal(await response.text(), String(TOTAL));
    assert.ok(
      producedWhileStalled < 12 * MiB,
      `${
        (producedWhileStalled / MiB).toFixed(1)
      } MiB were read from the client while the upstream read nothing`,
    );
    assert.ok(
      rssStalled - rssBefore < 48 * MiB,
      `RSS grew ${((rssStalled - rssBefore) / MiB).toFixed(1)} MiB during the stall`,
    );
  } finally {
    await upstream.shutdown();
  }
});

Deno.test("a client leaving mid-download cancels the upstream's response stream", async () => {
  const cancelled = Promise.withResolvers<void>();
  const upstream = Deno.serve(LOOPBACK, () => {
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        await new Promise((resolve) => setTimeout(resolve, 5));
        controller.enqueue(new Uint8Array(64 * 1024));
      },
      cancel() {
        cancelled.resolve();
      },
    });
    return new Response(body);
  });
  try {
    await using proxy = await startApp([
      { name: "stream", path: "/stream", url: `http://127.0.0.1:${upstream.addr.port}` },
    ]);
    const abort = new AbortController();
    const response = await fetch(`${proxy.base}/stream/big`, {
      headers: AUTH,
      signal: abort.signal,
    });
    const reader = response.body!.getReader();
    let read = 0;
    while (read < 2 * MiB) read += (await reader.read()).value?.length ?? 0;
    abort.abort();
    await reader.cancel().catch(() => {});
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      cancelled.promise,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error("upstream stream was not cancelled")), 3000);
      }),
    ]).finally(() => clearTimeout(timer));
    await waitFor("the lease to be released", () => proxy.service("stream").in_flight === 0, 3000);
  } finally {
    await upstream.shutdown();
  }
});

Deno.test("a service process SIGKILLed under load is restarted and serves again", async () => {
  await using proxy = await startApp([
    { name: "victim", path: "/victim", command: killableCommand(), startup_timeout: 20 },
  ]);
  assert.equal(await ok(proxy.base, "/victim/x"), 200);
  let killedAt = Infinity;
  const late: string[] = [];
  const starts: number[] = [];
  const report = await hammer(
    3000,
    20,
    (i) => {
      starts[i] = performance.now();
      if (i === 1000) return `${proxy.base}/victim/sigkill`;
      return `${proxy.base}/victim/x`;
    },
    (status, body, i) => {
      if (i === 1000) killedAt = performance.now();
      // In flight while the process died: 502 is the honest answer. Anything begun after the
      // death was noticed must succeed.
      if (status !== 200 && starts[i] > killedAt + 200) late.push(`#${i} ${status} ${body}`);
      return status === 200 || status === 502;
    },
  );
  assert.deepEqual(report.samples, []);
  assert.deepEqual(late, []);
  const victim = proxy.service("victim");
  assert.equal(victim.crashes, 1);
  assert.ok(victim.starts >= 2);
  assert.equal(await ok(proxy.base, "/victim/x"), 200);
});
