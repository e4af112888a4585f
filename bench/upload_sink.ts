/**
 * An upstream that reads every request body to its end and answers the number of bytes, for
 * the upload rounds of `bench/transport.ts`.
 *
 * Run: `deno run --allow-net=127.0.0.1 bench/upload_sink.ts <port>`
 *
 * @module
 */

Deno.serve(
  { hostname: "127.0.0.1", port: Number(Deno.args[0]), onListen() {} },
  async (request) => {
    let count = 0;
    if (request.body) { for await (const chunk of request.body) count += chunk.byteLength; }
    return new Response(String(count));
  },
);
