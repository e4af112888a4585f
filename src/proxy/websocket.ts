/**
 * WebSocket pass-through: the client's upgrade is answered only once the upstream accepted
 * its own, so the subprotocol the upstream chose is the one the client gets.
 *
 * @module
 */

import { badGateway, badRequest, gatewayTimeout, problem } from "./problem.ts";

/** Handshake headers the WebSocket client writes itself. */
const HANDSHAKE_HEADERS = [
  "sec-websocket-key",
  "sec-websocket-version",
  "sec-websocket-extensions",
  "sec-websocket-protocol",
];

/** Whether `request` asks for a WebSocket upgrade. */
export function isWebSocketUpgrade(request: Request): boolean {
  return request.headers.get("upgrade")?.toLowerCase() === "websocket";
}

/** A `Sec-WebSocket-Key`: base64 of 16 bytes (RFC 6455 §4.1). */
const WEBSOCKET_KEY = /^[A-Za-z0-9+/]{21}[AQgw]==$/;

/**
 * Checks the client's handshake before anything is started or dialled: 426 (with
 * `Sec-WebSocket-Version: 13`) for another protocol version, 400 for a missing or malformed
 * key, a method other than GET, or a `Connection` header without `upgrade`. Null when valid.
 */
export function handshakeProblem(request: Request): Response | null {
  const headers = request.headers;
  if (headers.get("sec-websocket-version") !== "13") {
    return problem(426, "WebSocket version 13 is required.", { "sec-websocket-version": "13" });
  }
  if (request.method !== "GET") return badRequest("A WebSocket handshake must use GET.");
  if (!WEBSOCKET_KEY.test(headers.get("sec-websocket-key") ?? "")) {
    return badRequest("The Sec-WebSocket-Key header is missing or malformed.");
  }
  const connection = headers.get("connection") ?? "";
  if (!connection.split(",").some((token) => token.trim().toLowerCase() === "upgrade")) {
    return badRequest("A WebSocket handshake needs Connection: upgrade.");
  }
  return null;
}

/**
 * Closes `socket` the way `event` closed its peer. The WebSocket API can only send 1000 and
 * 3000–4999; any other code (1001, 1011, or none) closes without a code, so a client never
 * mistakes an upstream failure for a normal closure.
 */
function closeLike(socket: WebSocket, event: CloseEvent): void {
  if (socket.readyState === WebSocket.CLOSING || socket.readyState === WebSocket.CLOSED) return;
  const code = event.code;
  if (code === 1000 || (code >= 3000 && code <= 4999)) socket.close(code, event.reason);
  else socket.close();
}

/** Waits for `socket` to open; false when it fails or `timeoutMs` passes first. */
function opened(socket: WebSocket, timeoutMs: number): Promise<boolean | "timeout"> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      socket.close();
      resolve("timeout");
    }, timeoutMs);
    const settle = (result: boolean) => () => {
      clearTimeout(timer);
      resolve(result);
    };
    socket.onopen = settle(true);
    socket.onclose = settle(false);
  });
}

/**
 * Proxies a WebSocket upgrade: connects to `url` (`ws:`/`wss:`) with the client's
 * subprotocols and `headers` (filtered, see `upstreamHeaders`), then upgrades the client with
 * the subprotocol the upstream chose and relays text and binary messages both ways; messages
 * the upstream sends before the client side is open are queued. A close on either side closes
 * the other with the same code and reason where the API allows it. `onClosed` runs once, when
 * both sides are closed, or when the client has not taken the upgrade within `timeoutMs`.
 * Without an upstream handshake in `timeoutMs` the answer is 504; a refused or rejected
 * handshake is 502 (then `onClosed` is not called). Needs `--allow-net`.
 *
 * @example
 * ```ts
 * if (isWebSocketUpgrade(request)) {
 *   return proxyWebSocket(request, "ws://127.0.0.1:8000/chat", headers, 30_000, lease.release);
 * }
 * ```
 */
export async function proxyWebSocket(
  request: Request,
  url: string,
  headers: Headers,
  timeoutMs: number,
  onClosed: () => void,
): Promise<Response> {
  for (const name of HANDSHAKE_HEADERS) headers.delete(name);
  const protocols = request.headers.get("sec-websocket-protocol")?.split(",").map((p) => p.trim())
    .filter((p) => p !== "") ?? [];
  const upstream = new WebSocket(url, { protocols, headers });
  upstream.binaryType = "arraybuffer";
  const early: (string | ArrayBuffer)[] = [];
  upstream.onmessage = (event) => early.push(event.data);
  const result = await opened(upstream, timeoutMs);
  if (result !== true) return result === "timeout" ? gatewayTimeout() : badGateway();

  let upgraded: { socket: WebSocket; response: Response };
  try {
    upgraded = Deno.upgradeWebSocket(request, {
      protocol: upstream.protocol === "" ? undefined : upstream.protocol,
    });
  } catch {
    // handshakeProblem() ran before; this is a last guard so the upstream never leaks.
    upstream.close();
    return badRequest("The WebSocket handshake could not be completed.");
  }
  const { socket, response } = upgraded;
  socket.binaryType = "arraybuffer";
  let upstreamClose: CloseEvent | null = null;
  let sides = 2;
  let clientDone = false;
  const sideClosed = () => {
    if (--sides === 0) onClosed();
  };
  const clientClosed = () => {
    if (clientDone) return;
    clientDone = true;
    clearTimeout(abandoned);
    sideClosed();
  };
  // A client that leaves before taking the 101 never opens or closes its socket.
  const abandoned = setTimeout(() => {
    upstream.close();
    clientClosed();
  }, timeoutMs);
  socket.onopen = () => {
    clearTimeout(abandoned);
    for (const message of early) socket.send(message);
    early.length = 0;
    if (upstreamClose !== null) closeLike(socket, upstreamClose);
  };
  upstream.onmessage = (event) => {
    if (socket.readyState === WebSocket.OPEN) socket.send(event.data);
    else if (socket.readyState === WebSocket.CONNECTING) early.push(event.data);
  };
  socket.onmessage = (event) => {
    if (upstream.readyState === WebSocket.OPEN) upstream.send(event.data);
  };
  upstream.onclose = (event) => {
    upstreamClose = event;
    if (socket.readyState !== WebSocket.CONNECTING) closeLike(socket, event);
    sideClosed();
  };
  socket.onclose = (event) => {
    closeLike(upstream, event);
    clientClosed();
  };
  return response;
}
