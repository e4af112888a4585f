/**
 * The demo upstream: an HTTP echo at `/`, an SSE clock at `/sse` and a WebSocket echo at
 * `/ws`. Listens on `$HOST:$PORT`, as the process runtime tells it.
 *
 * Permissions: `--allow-net=127.0.0.1 --allow-env=PORT,HOST`.
 *
 * @module
 */

const port = Number(Deno.env.get("PORT") ?? 8000);
const hostname = Deno.env.get("HOST") ?? "127.0.0.1";

function sse(): Response {
  let timer: ReturnType<typeof setInterval> | undefined;
  const encoder = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      let n = 0;
      timer = setInterval(() => {
        n++;
        controller.enqueue(encoder.encode(`id: ${n}\ndata: ${new Date().toISOString()}\n\n`));
        if (n === 5) {
          clearInterval(timer);
          controller.close();
        }
      }, 1000);
    },
    cancel() {
      clearInterval(timer);
    },
  });
  return new Response(body, { headers: { "content-type": "text/event-stream" } });
}

Deno.serve({ port, hostname, onListen: () => {} }, (request) => {
  const url = new URL(request.url);
  if (url.pathname === "/ws" && request.headers.get("upgrade") === "websocket") {
    const { socket, response } = Deno.upgradeWebSocket(request);
    socket.onmessage = (event) => socket.send(event.data);
    return response;
  }
  if (url.pathname === "/sse") return sse();
  return Response.json({
    method: request.method,
    path: url.pathname,
    query: url.search,
    forwarded_for: request.headers.get("x-forwarded-for"),
    pid: Deno.pid,
  });
});
