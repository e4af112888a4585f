/**
 * A client WebSocket for tests that queues what it receives, so a test can await messages one
 * by one.
 *
 * Tests using it need `--allow-net` for the server they connect to.
 *
 * @module
 */

/** An open client WebSocket made by {@link openWebSocket}. */
export interface TestWebSocket {
  /** The socket (`binaryType` is `"arraybuffer"`). */
  readonly socket: WebSocket;
  /** Resolves with the close event. */
  readonly closed: Promise<CloseEvent>;
  /** The next message received (queued or future); rejects after the options' `nextTimeoutMs`. */
  next(): Promise<string | ArrayBuffer>;
}

/** Options for {@link openWebSocket}. */
export interface TestWebSocketOptions {
  /** Handshake request headers (e.g. the proxy's `authorization`). */
  readonly headers: Record<string, string>;
  /** Subprotocols to offer. */
  readonly protocols?: string[];
  /** How long `next()` waits for a message before it rejects. */
  readonly nextTimeoutMs: number;
}

/**
 * Opens a WebSocket to `url` and resolves once it is open; rejects if it fails to open.
 *
 * @example
 * ```ts
 * const ws = await openWebSocket("ws://127.0.0.1:8080/ws", { headers: {}, nextTimeoutMs: 1000 });
 * ws.socket.send("hello");
 * assert.equal(await ws.next(), "hello");
 * ```
 */
export async function openWebSocket(
  url: string | URL,
  options: TestWebSocketOptions,
): Promise<TestWebSocket> {
  const messages: (string | ArrayBuffer)[] = [];
  const waiting: ((value: string | ArrayBuffer) => void)[] = [];
  const socket = new WebSocket(url, { protocols: options.protocols, headers: options.headers });
  socket.binaryType = "arraybuffer";
  socket.onmessage = (event) => {
    const next = waiting.shift();
    if (next) next(event.data);
    else messages.push(event.data);
  };
  const closed = new Promise<CloseEvent>((resolve) => socket.addEventListener("close", resolve));
  await new Promise<void>((resolve, reject) => {
    socket.onopen = () => resolve();
    socket.onerror = () => reject(new Error("WebSocket failed to open"));
  });
  const next = () => {
    if (messages.length > 0) return Promise.resolve(messages.shift()!);
    return new Promise<string | ArrayBuffer>((resolve, reject) => {
      const waiter = (value: string | ArrayBuffer) => {
        clearTimeout(timer);
        resolve(value);
      };
      const timer = setTimeout(() => {
        waiting.splice(waiting.indexOf(waiter), 1);
        reject(new Error(`No WebSocket message within ${options.nextTimeoutMs} ms`));
      }, options.nextTimeoutMs);
      waiting.push(waiter);
    });
  };
  return { socket, closed, next };
}
