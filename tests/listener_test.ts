/**
 * The swappable HTTPS listener under load: certificate swaps drop nothing.
 *
 * deno test --allow-net=127.0.0.1 --allow-read=/tmp --allow-write=/tmp \
 *   --allow-run=openssl tests/listener_test.ts
 */
import assert from "node:assert/strict";
import { listenTls } from "../src/tls/listener.ts";
import type { CertificatePair } from "../src/tls/store.ts";
import { makeCa, makeLeaf } from "./helpers/openssl.ts";

/** A CA (`dir/<name>-ca.*`) and a localhost leaf it signed, made with openssl. */
async function makeCertificate(
  dir: string,
  name: string,
): Promise<CertificatePair & { ca: string }> {
  const ca = await makeCa(dir, `${name}-ca`);
  const { cert, key } = await makeLeaf(dir, ca, ["DNS:localhost", "IP:127.0.0.1"]);
  return { cert, key, ca: ca.pem };
}

/** Whether a fresh connection trusting only `ca` gets a response from `url`. */
async function servedBy(url: URL, ca: string): Promise<boolean> {
  using client = Deno.createHttpClient({ caCerts: [ca] });
  try {
    await (await fetch(url, { client })).body?.cancel();
    return true;
  } catch {
    return false;
  }
}

Deno.test("listenTls: swaps under load drop no request, and a stream spans a swap", async () => {
  const dir = await Deno.makeTempDir({ prefix: "listener-" });
  try {
    const [a, b] = [await makeCertificate(dir, "a"), await makeCertificate(dir, "b")];
    const chunk = new TextEncoder().encode("x".repeat(1024));
    const https = listenTls({ hostname: "127.0.0.1", port: 0, ...a }, (request, info) => {
      const { pathname } = new URL(request.url);
      if (pathname === "/addr") return new Response(JSON.stringify(info.remoteAddr));
      if (pathname !== "/stream") return new Response("ok");
      let sent = 0;
      return new Response(
        new ReadableStream({
          async pull(controller) {
            await new Promise((r) => setTimeout(r, 20));
            controller.enqueue(chunk);
            if (++sent === 60) controller.close();
          },
        }),
      );
    });
    const url = https.url;
    assert.equal(await servedBy(url, a.ca), true);
    assert.equal(await servedBy(url, b.ca), false);

    // A 1.2 s stream opened on certificate A.
    using streamClient = Deno.createHttpClient({ caCerts: [a.ca] });
    const stream = await fetch(new URL("/stream", url), { client: streamClient });
    const streamed = stream.arrayBuffer();

    // Load: 8 keep-alive workers (h2, one pooled client trusting both CAs) and 4 workers
    // opening a fresh connection per request.
    const both = [a.ca, b.ca];
    using pooled = Deno.createHttpClient({ caCerts: both });
    let ok = 0;
    const failures: string[] = [];
    let running = true;
    const worker = async (fresh: boolean) => {
      while (running) {
        const client = fresh ? Deno.createHttpClient({ caCerts: both }) : pooled;
        try {
          const response = await fetch(url, { client });
          if ((await response.text()) === "ok") ok++;
          else failures.push(`status ${response.status}`);
        } catch (error) {
          failures.push(`${fresh ? "fresh" : "pooled"}: ${error} ${(error as Error).cause ?? ""}`);
        } finally {
          if (fresh) client.close();
        }
      }
    };
    const workers = [
      ...Array.from({ length: 8 }, () => worker(false)),
      ...Array.from({ length: 4 }, () => worker(true)),
    ];
    const swaps = 10;
    const swapStart = performance.now();
    for (let i = 0; i < swaps; i++) {
      await new Promise((r) => setTimeout(r, 100));
      await https.setCertificate(i % 2 === 0 ? b : a);
    }
    const elapsed = performance.now() - swapStart;
    running = false;
    await Promise.all(workers);

    assert.deepEqual(
      failures.slice(0, 5),
      [],
      `${failures.length} failed of ${ok + failures.length}`,
    );
    assert.ok(ok > 100, `only ${ok} requests completed`);
    assert.equal(
      (await streamed).byteLength,
      60 * 1024,
      "the stream opened before the swaps completed",
    );
    // After an even number of swaps the listener is back on A; one more swap → B only.
    await https.setCertificate(b);
    assert.equal(await servedBy(url, b.ca), true);
    assert.equal(await servedBy(url, a.ca), false);
    // The handler sees the real client address, not the splice's loopback port.
    const conn = await Deno.connectTls({
      hostname: "127.0.0.1",
      port: Number(url.port),
      caCerts: [b.ca],
    });
    await conn.write(
      new TextEncoder().encode("GET /addr HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    );
    const reply = await new Response(conn.readable).text();
    assert.match(reply, new RegExp(`"port":${conn.localAddr.port}\\b`));
    assert.equal(await https.drain(5_000), true);
    // Figures for the module's JSDoc.
    console.log(
      JSON.stringify({
        swaps,
        requests: ok,
        failed: failures.length,
        elapsed_ms: Math.round(elapsed),
      }),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("listenTls: a bad certificate is refused and the old one keeps serving", async () => {
  const dir = await Deno.makeTempDir({ prefix: "listener-" });
  try {
    const a = await makeCertificate(dir, "a");
    const https = listenTls({ hostname: "127.0.0.1", port: 0, ...a }, () => new Response("ok"));
    await assert.rejects(https.setCertificate({ cert: "not a certificate", key: a.key }));
    assert.equal(await servedBy(https.url, a.ca), true);
    assert.equal(await https.drain(1_000), true);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
