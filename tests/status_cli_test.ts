/**
 * Where `proxy-status --config` looks for the proxy. (The full command — table, JSON, exit
 * codes, follow — is exercised against a running daemon in tests/daemon_cli_test.ts.)
 *
 * Run with `--allow-read=.,/tmp --allow-write=/tmp --allow-run=deno`.
 */

import assert from "node:assert/strict";
import { runCli } from "./helpers/cli.ts";

const STATUS_FLAGS = ["--allow-net=127.0.0.1,proxy.invalid", "--allow-read=/tmp", "--allow-env"];

async function statusWith(global: string): Promise<string> {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/proxy.yaml`;
    await Deno.writeTextFile(
      file,
      `global:\n  bearer_token: "${"t".repeat(40)}"\n${global}services: []\n`,
    );
    const result = await runCli(STATUS_FLAGS, ["proxy-status", "--config", file]);
    assert.equal(result.code, 1, result.stderr);
    return result.stderr;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("proxy-status --config asks the HTTPS listener by name when HTTP only redirects", async () => {
  const stderr = await statusWith(
    "  domain: proxy.invalid\n  listen_https: 8443\n  tls_certfile: a.pem\n  tls_keyfile: b.pem\n",
  );
  assert.match(stderr, /https:\/\/proxy\.invalid:8443 unreachable/);
});

Deno.test("proxy-status --config asks the local HTTP listener without TLS", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  const stderr = await statusWith(`  listen_host: 0.0.0.0\n  listen_http: ${port}\n`);
  assert.match(
    stderr,
    new RegExp(`http://127\\.0\\.0\\.1:${port} unreachable: connection refused`),
  );
});
