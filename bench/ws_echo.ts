/**
 * A WebSocket echo server on 127.0.0.1:`port` for the benchmark's message-rate round.
 *
 * Run: `deno run --allow-net=127.0.0.1 bench/ws_echo.ts <port>`
 *
 * @module
 */

Deno.serve({ hostname: "127.0.0.1", port: Number(Deno.args[0]), onListen() {} }, (request) => {
  const { socket, response } = Deno.upgradeWebSocket(request);
  socket.onmessage = (event) => socket.send(event.data);
  return response;
});
