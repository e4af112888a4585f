/**
 * WebSocket pass-through: a real client, the real handler on `Deno.serve`, a real upstream.
 *
 * Run with `--allow-net=127.0.0.1`.
 */

import assert from "node:assert/strict";
import { AUTH, LOOPBACK, startProxy, urlService } from "./helpers/proxy.ts";
import { openWebSocket, type TestWebSocket } from "./helpers/websocket.ts";

/** What the upstream saw of the handshake. */
interface Handshake {
  authorization: string | null;
  protocols: string | null;
  path: string;
}

/**
 * An upstream WebSocket server: echoes messages, sends "hello" as soon as it opens, closes
 * with the code and reason a `close <code> <reason>` message asks for, and records handshakes
 * and the close it received.
 */
function wsUpstream() {
  const handshakes: Handshake[] = [];
  const closes = Promise.withResolvers<{ code: number; reason: string }>();
  const server = Deno.serve(LOOPBACK, (req) => {
    handshakes.push({
      authorization: req.headers.get("authorization"),
      protocols: req.headers.get("sec-websocket-protocol"),
      path: req.url.slice(req.url.indexOf("/", 8)),
    });
    const offered = req.headers.get("sec-websocket-protocol")?.split(",").map((p) => p.trim());
    const { socket, response } = Deno.upgradeWebSocket(req, {
      protocol: offered?.includes("chat.v2") ? "chat.v2" : undefined,
    });
    socket.binaryType = "arraybuffer";
    socket.onopen = () => socket.send("hello");
    socket.onmessage = (event) => {
      const match = typeof event.data === "string" && /^close (\d+) (.*)$/.exec(event.data);
      if (match) socket.close(Number(match[1]), match[2]);
      else socket.send(event.data);
    };
    socket.onclose = (event) => closes.resolve({ code: event.code, reason: event.reason });
    return response;
  });
  return Object.assign(server, {
    url: `http://127.0.0.1:${server.addr.port}`,
    handshakes,
    closed: closes.promise,
  });
}

/** A client WebSocket through the proxy that queues what it receives. */
function connect(url: string, protocols?: string[]): Promise<TestWebSocket> {
  return openWebSocket(url, { protocols, headers: AUTH, nextTimeoutMs: 1000 });
}

Deno.test("WebSocket relays text and binary both ways, and early upstream messages", async () => {
  await using upstream = wsUpstream();
  await using proxy = startProxy([urlService("ws", "/ws", upstream.url, { auth_token: "svc" })]);
  const client = await connect(`ws://127.0.0.1:${proxy.port}/ws/chat?room=1`);
  assert.equal(await client.next(), "hello", "sent by the upstream the moment it opened");
  client.socket.send("text message");
  assert.equal(await client.next(), "text message");
  client.socket.send(new Uint8Array([0, 1, 2, 255]));
  assert.deepEqual(
    new Uint8Array(await client.next() as ArrayBuffer),
    new Uint8Array([0, 1, 2, 255]),
  );
  assert.deepEqual(upstream.handshakes, [
    { authorization: "Bearer svc", protocols: null, path: "/chat?room=1" },
  ]);
  client.socket.close(1000, "done");
  await client.closed;
  assert.deepEqual(await upstream.closed, { code: 1000, reason: "done" });
  await proxy.acquirer.releasesReach(1);
  assert.equal(proxy.records.length, 1);
  assert.equal(proxy.records[0].status, 101);
});

Deno.test("WebSocket passes the upstream's close code and reason to the client", async () => {
  await using upstream = wsUpstream();
  await using proxy = startProxy([urlService("ws", "/ws", upstream.url)]);
  const client = await connect(`ws://127.0.0.1:${proxy.port}/ws`);
  await client.next();
  client.socket.send("close 4001 upstream says bye");
  const event = await client.closed;
  assert.equal(event.code, 4001);
  assert.equal(event.reason, "upstream says bye");
  await upstream.closed;
  await proxy.acquirer.releasesReach(1);
});

Deno.test("WebSocket passes the client's close code and reason upstream", async () => {
  await using upstream = wsUpstream();
  await using proxy = startProxy([urlService("ws", "/ws", upstream.url)]);
  const client = await connect(`ws://127.0.0.1:${proxy.port}/ws`);
  await client.next();
  client.socket.close(4321, "client leaves");
  await client.closed;
  assert.deepEqual(await upstream.closed, { code: 4321, reason: "client leaves" });
  await proxy.acquirer.releasesReach(1);
});

Deno.test("WebSocket negotiates the subprotocol with the upstream", async () => {
  await using upstream = wsUpstream();
  await using proxy = startProxy([urlService("ws", "/ws", upstream.url)]);
  const client = await connect(`ws://127.0.0.1:${proxy.port}/ws`, ["chat.v1", "chat.v2"]);
  assert.equal(client.socket.protocol, "chat.v2");
  assert.equal(upstream.handshakes[0].protocols, "chat.v1, chat.v2");
  client.socket.close();
  await client.closed;
  await upstream.closed;
});

Deno.test("WebSocket upgrade needs the proxy token", async () => {
  await using upstream = wsUpstream();
  await using proxy = startProxy([urlService("ws", "/ws", upstream.url)]);
  const socket = new WebSocket(`ws://127.0.0.1:${proxy.port}/ws`);
  const closed = new Promise((resolve) => socket.onclose = resolve);
  const event = await new Promise<Event>((resolve) => {
    socket.onerror = resolve;
    socket.onopen = resolve;
  });
  assert.equal(event.type, "error");
  assert.match((event as ErrorEvent).message, /401/);
  await closed;
  assert.equal(upstream.handshakes.length, 0);
  assert.equal(proxy.acquirer.acquired, 0);
});

Deno.test("WebSocket upgrade to a dead upstream is a 502 and releases the lease", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const dead = `http://127.0.0.1:${listener.addr.port}`;
  listener.close();
  await using proxy = startProxy([urlService("ws", "/ws", dead)]);
  const response = await fetch(`${proxy.base}/ws`, {
    headers: {
      ...AUTH,
      connection: "upgrade",
      upgrade: "websocket",
      "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
      "sec-websocket-version": "13",
    },
  });
  assert.equal(response.status, 502);
  await response.body?.cancel();
  await proxy.acquirer.releasesReach(1);
});

// Deno 2.9.6 never settles a server socket upgraded on a connection the client already
// closed, so the proxy's graceful shutdown would wait for it forever: this test leaves the
// proxy running (sanitizers off) and checks what matters, that the lease and upstream end.
Deno.test({
  name: "WebSocket lease is released when the client leaves before the upgrade",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using upstream = wsUpstream();
  const proxy = startProxy([urlService("ws", "/ws", upstream.url, { response_timeout: 0.3 })]);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
  await conn.write(
    new TextEncoder().encode(
      `GET /ws HTTP/1.1\r\nHost: p\r\nAuthorization: ${AUTH.authorization}\r\n` +
        "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n" +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    ),
  );
  conn.close();
  await proxy.acquirer.releasesReach(1);
  await upstream.closed;
  assert.equal(proxy.acquirer.releases, 1);
});
