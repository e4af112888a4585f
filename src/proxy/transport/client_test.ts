import assert from "node:assert/strict";
import { Http1Client, httpTarget, UpstreamError } from "./client.ts";
import { Pool } from "./pool.ts";
import { BAD_HEADS } from "./response_parser_test.ts";
import { tcpUpstream } from "../../../tests/helpers/tcp_upstream.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A raw TCP upstream: `serve` runs per connection and gets each request's head as text. */
function rawUpstream(serve: (conn: Deno.Conn, heads: AsyncGenerator<string>) => Promise<void>) {
  return tcpUpstream((conn) => serve(conn, heads(conn)));
}

/** Request heads (and whatever followed them in the same reads) as they arrive on `conn`. */
async function* heads(conn: Deno.Conn): AsyncGenerator<string> {
  let text = "";
  const buffer = new Uint8Array(65536);
  for (;;) {
    let end: number;
    while ((end = text.indexOf("\r\n\r\n")) < 0) {
      const n = await conn.read(buffer);
      if (n === null) return;
      text += decoder.decode(buffer.subarray(0, n));
    }
    yield text.slice(0, end + 4);
    text = text.slice(end + 4);
  }
}

function clientAndPool() {
  const pool = new Pool({ maxIdlePerOrigin: 8, idleTimeoutMs: 5000 });
  return {
    pool,
    client: new Http1Client(pool),
    [Symbol.dispose]: () => pool.closeIdle(),
  };
}

function send(client: Http1Client, url: string, init?: RequestInit, timeoutMs = 2000) {
  const request = new Request("http://proxy.test/", init);
  return client.send(request, httpTarget(url)!, new Headers(init?.headers), timeoutMs);
}

async function write(conn: Deno.Conn, text: string): Promise<void> {
  const bytes = encoder.encode(text);
  for (let done = 0; done < bytes.length;) done += await conn.write(bytes.subarray(done));
}

Deno.test("httpTarget splits plain http URLs without re-encoding", () => {
  assert.deepEqual(httpTarget("http://127.0.0.1:8000/x?q='\"<>"), {
    authority: "127.0.0.1:8000",
    hostname: "127.0.0.1",
    port: 8000,
    path: "/x?q='\"<>",
  });
  assert.deepEqual(httpTarget("http://[::1]/"), {
    authority: "[::1]",
    hostname: "::1",
    port: 80,
    path: "/",
  });
  assert.equal(httpTarget("http://app:9/")!.hostname, "app");
  for (const url of ["https://a/", "http://u:p@a/", "http://a:0/", "http:///x", "http://a/x y"]) {
    assert.equal(httpTarget(url), null, url);
  }
});

Deno.test("every ambiguous or malformed response head is a failure, never a response", async () => {
  for (const [name, head] of Object.entries(BAD_HEADS)) {
    await using upstream = rawUpstream(async (conn, requests) => {
      await requests.next();
      await write(conn, head + "abc");
    });
    using c = clientAndPool();
    await assert.rejects(
      send(c.client, upstream.url + "/"),
      (error) => error instanceof UpstreamError && error.kind === "failed",
      name,
    );
  }
});

Deno.test("bad chunk framing errors the body stream", async () => {
  const bodies = [
    "zz\r\nabc\r\n0\r\n\r\n",
    "3\r\nabcX\r\n0\r\n\r\n",
    "3\nabc\r\n0\r\n\r\n",
    "3\r\nab",
  ];
  for (const body of bodies) {
    await using upstream = rawUpstream(async (conn, requests) => {
      await requests.next();
      await write(conn, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body);
    });
    using c = clientAndPool();
    const response = await send(c.client, upstream.url + "/");
    await assert.rejects(response.text(), JSON.stringify(body));
    assert.equal(c.pool.idleCount, 0);
  }
});

Deno.test("responses are framed by length, chunks (trailers dropped) or the close", async () => {
  await using upstream = rawUpstream(async (conn, requests) => {
    for await (const head of requests) {
      if (head.startsWith("GET /length")) {
        await write(conn, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
      } else if (head.startsWith("GET /chunked")) {
        await write(
          conn,
          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n",
        );
        await write(conn, "6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n");
      } else if (head.startsWith("GET /continue")) {
        await write(conn, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early\r\nLink: </a>\r\n\r\n");
        await write(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
      } else {
        await write(conn, "HTTP/1.1 200 OK\r\n\r\nuntil close");
        return;
      }
    }
  });
  using c = clientAndPool();
  const length = await send(c.client, upstream.url + "/length");
  assert.equal(await length.text(), "hello");
  const chunked = await send(c.client, upstream.url + "/chunked");
  assert.equal(chunked.headers.get("transfer-encoding"), null);
  assert.equal(await chunked.text(), "hello world");
  const early = await send(c.client, upstream.url + "/continue");
  assert.equal(early.status, 200);
  assert.equal(await early.text(), "ok");
  const close = await send(c.client, upstream.url + "/close");
  assert.equal(await close.text(), "until close");
  assert.equal(upstream.accepted(), 1, "one keep-alive connection served them all");
  assert.equal(c.pool.idleCount, 0, "a read-until-close connection is not pooled");
});

Deno.test("requests go out with the raw target, Host, and the client's framing", async () => {
  const seen: string[] = [];
  await using upstream = rawUpstream(async (conn, requests) => {
    for await (const head of requests) {
      seen.push(head);
      const length = /content-length: (\d+)/.exec(head);
      let body = "";
      if (length !== null) body = "(body sent by length)";
      if (head.includes("transfer-encoding: chunked")) body = "(chunked body)";
      // Drain what a body brought, as far as this test needs: bodies are tiny.
      if (body !== "") await new Promise((resolve) => setTimeout(resolve, 20));
      await write(conn, `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      if (body !== "") return;
    }
  });
  using c = clientAndPool();
  const options = await send(c.client, upstream.url + "/x?q='\"<>%2F", { method: "OPTIONS" });
  assert.equal(await options.text(), "");
  assert.match(seen[0], /^OPTIONS \/x\?q='"<>%2F HTTP\/1\.1\r\nhost: 127\.0\.0\.1:\d+\r\n\r\n$/);
  const put = await send(c.client, upstream.url + "/p", {
    method: "PUT",
    body: "abc",
    headers: { "content-length": "3" },
  });
  assert.equal(await put.text(), "(body sent by length)");
  const post = await send(c.client, upstream.url + "/p", { method: "POST", body: "abc" });
  assert.equal(await post.text(), "(chunked body)");
});

Deno.test("a pooled connection the upstream closed is retried once for a request without body", async () => {
  await using upstream = rawUpstream(async (conn, requests) => {
    await requests.next();
    await write(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    // Keep-alive promised, but the next request finds the socket closed without an answer.
    await requests.next();
  });
  using c = clientAndPool();
  assert.equal(await (await send(c.client, upstream.url + "/")).text(), "ok");
  assert.equal(await (await send(c.client, upstream.url + "/")).text(), "ok");
  assert.equal(upstream.accepted(), 2);
  await (await send(c.client, upstream.url + "/")).text();
  await assert.rejects(
    send(c.client, upstream.url + "/", { method: "POST", body: "once" }),
    (error) => error instanceof UpstreamError && error.kind === "failed",
    "a body is never sent twice",
  );
});

Deno.test("no head within the timeout is a timeout; the client leaving is an abort", async () => {
  let closed = 0;
  await using upstream = rawUpstream(async (conn, requests) => {
    await requests.next();
    if ((await conn.read(new Uint8Array(1))) === null) closed++;
  });
  using c = clientAndPool();
  await assert.rejects(
    send(c.client, upstream.url + "/", undefined, 100),
    (error) => error instanceof UpstreamError && error.kind === "timeout",
  );
  const abort = new AbortController();
  const pending = send(c.client, upstream.url + "/", { signal: abort.signal });
  setTimeout(() => abort.abort(), 50);
  await assert.rejects(
    pending,
    (error) => error instanceof UpstreamError && error.kind === "aborted",
  );
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(closed, 2, "both upstream connections were closed");
  assert.equal(c.pool.idleCount, 0);
});

Deno.test("an upstream closing mid-body errors that stream; the connection is not pooled", async () => {
  await using upstream = rawUpstream(async (conn, requests) => {
    await requests.next();
    await write(conn, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + "x".repeat(1000));
  });
  using c = clientAndPool();
  const response = await send(c.client, upstream.url + "/");
  await assert.rejects(response.text());
  assert.equal(c.pool.idleCount, 0);
});

Deno.test("a cancelled body closes the upstream connection", async () => {
  const { promise: closed, resolve } = Promise.withResolvers<void>();
  await using upstream = rawUpstream(async (conn, requests) => {
    await requests.next();
    await write(conn, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n");
    while ((await conn.read(new Uint8Array(16))) !== null);
    resolve();
  });
  using c = clientAndPool();
  const response = await send(c.client, upstream.url + "/");
  const reader = response.body!.getReader();
  assert.equal(decoder.decode((await reader.read()).value), "abc");
  await reader.cancel();
  await closed;
  assert.equal(c.pool.idleCount, 0);
});
