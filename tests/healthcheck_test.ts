import assert from "node:assert/strict";
import { probe } from "../docker/healthcheck.ts";

/** Writes a config whose `listen_http` is `port`; returns its path. */
async function configFor(port: number): Promise<string> {
  const file = await Deno.makeTempFile({ prefix: "nodetool-health-", suffix: ".yaml" });
  await Deno.writeTextFile(
    file,
    `global:\n  bearer_token: ${"t".repeat(32)}\n  listen_http: ${port}\n`,
  );
  return file;
}

for (const [status, code] of [[200, 0], [308, 0], [503, 1]] as const) {
  Deno.test(`healthcheck: /healthz answering ${status} exits ${code}`, async () => {
    const seen: string[] = [];
    await using server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      (request) => {
        seen.push(new URL(request.url).pathname);
        return new Response(null, {
          status,
          headers: status === 308 ? { location: "https://example.com/healthz" } : {},
        });
      },
    );
    const file = await configFor(server.addr.port);
    try {
      assert.equal(await probe(file), code);
      assert.deepEqual(seen, ["/healthz"]);
    } finally {
      await Deno.remove(file);
    }
  });
}

Deno.test("healthcheck: nothing listening exits 1", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  const file = await configFor(port);
  try {
    assert.equal(await probe(file), 1);
  } finally {
    await Deno.remove(file);
  }
});
