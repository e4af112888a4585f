/**
 * WebSocket message rate: a few clients each keep a window of messages in flight to an echo
 * server for a while; the figure is echoes received per second. Needs `--allow-net=127.0.0.1`.
 *
 * @module
 */

const CLIENTS = 4;
const WINDOW = 32;
const MESSAGE = "x".repeat(64);

function open(url: string, headers: Record<string, string>): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers });
    socket.onopen = () => resolve(socket);
    socket.onerror = (event) => reject(new Error(`WebSocket to ${url} failed: ${event.type}`));
  });
}

function closed(socket: WebSocket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.readyState === WebSocket.CLOSED) return resolve();
    socket.onclose = () => resolve();
    socket.close();
  });
}

/**
 * Returns echoed messages per second over `seconds` through `url` (`ws://…`).
 *
 * @example
 * ```ts
 * const rate = await wsMessageRate("ws://127.0.0.1:9000/", {}, 3);
 * ```
 */
export async function wsMessageRate(
  url: string,
  headers: Record<string, string>,
  seconds: number,
): Promise<number> {
  const sockets = await Promise.all(Array.from({ length: CLIENTS }, () => open(url, headers)));
  let received = 0;
  let running = true;
  for (const socket of sockets) {
    socket.onmessage = () => {
      received++;
      if (running) socket.send(MESSAGE);
    };
    for (let i = 0; i < WINDOW; i++) socket.send(MESSAGE);
  }
  const start = performance.now();
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  running = false;
  const rate = received / ((performance.now() - start) / 1000);
  await Promise.all(sockets.map(closed));
  return rate;
}
