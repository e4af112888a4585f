/**
 * The ceiling of the `fetch` approach: a `Deno.serve` that forwards every request to one
 * upstream with `fetch` and returns its response as is — no routing, auth, header work or
 * logging. The benchmark runs it as a reference.
 *
 * Run: `deno run --allow-net=127.0.0.1 bench/bare_forwarder.ts <port> <upstream origin>`
 *
 * @module
 */

const [port, upstream] = Deno.args;

Deno.serve({ hostname: "127.0.0.1", port: Number(port), onListen() {} }, (request) => {
  const url = request.url;
  const path = url.slice(url.indexOf("/", url.indexOf("//") + 2));
  return fetch(upstream + path, {
    method: request.method,
    headers: request.headers,
    body: request.body,
    redirect: "manual",
  });
});
