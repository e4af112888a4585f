/**
 * `deno task demo`: runs the proxy on a free loopback port with examples/demo.yaml and a fresh
 * token, prints how to try it, makes one request so the log shows a cold start, and leaves the
 * proxy running (the idle stop follows 10 s later). Ctrl-C stops it gracefully.
 *
 * Permissions: `--allow-run=deno --allow-net=127.0.0.1 --allow-read=.`.
 *
 * @module
 */

const root = new URL("..", import.meta.url).pathname;
const token = Array.from(crypto.getRandomValues(new Uint8Array(32)))
  .map((b) => b.toString(16).padStart(2, "0")).join("");

const child = new Deno.Command("deno", {
  args: [
    "run",
    "--allow-net=127.0.0.1",
    `--allow-read=${root}`,
    "--allow-env",
    "--allow-run=deno",
    `${root}main.ts`,
    "proxy",
    "--config",
    `${root}examples/demo.yaml`,
    "--port",
    "0",
  ],
  env: { PROXY_BEARER_TOKEN: token },
  stdin: "null",
  stdout: "inherit",
  stderr: "piped",
}).spawn();

const stop = () => child.kill("SIGTERM");
for (const signal of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(signal, stop);

const say = (text: string) => Deno.stdout.writeSync(new TextEncoder().encode(text + "\n"));
let announced = false;
const lines = child.stderr.pipeThrough(new TextDecoderStream());
for await (const chunk of lines) {
  Deno.stderr.writeSync(new TextEncoder().encode(chunk));
  const match = !announced && /"msg":"listening".*?"url":"([^"]+)"/.exec(chunk);
  if (!match) continue;
  announced = true;
  const url = `${match[1]}demo/`;
  say(`\nProxy ready at ${match[1]}  (token: ${token})\nTry:`);
  say(`  curl -H 'Authorization: Bearer ${token}' ${url}`);
  say(`  curl -N -H 'Authorization: Bearer ${token}' ${url}sse`);
  say(`  curl -H 'Authorization: Bearer ${token}' ${match[1]}proxy/status`);
  say("Sending a first request now: watch the cold start, then the idle stop after 10 s.\n");
  fetch(url, { headers: { authorization: `Bearer ${token}` } })
    .then(async (response) => say(`first request: ${response.status} ${await response.text()}`))
    .catch((error) => say(`first request failed: ${error}`));
}
Deno.exitCode = (await child.status).code;
for (const signal of ["SIGINT", "SIGTERM"] as const) Deno.removeSignalListener(signal, stop);
