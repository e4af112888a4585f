import assert from "node:assert/strict";
import { Pool } from "./pool.ts";

/** A listener that accepts connections and closes them on demand. */
function listener() {
  const server = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of server) conns.push(conn);
  })();
  return {
    port: server.addr.port,
    conns,
    async [Symbol.asyncDispose]() {
      server.close();
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // Closed by the test.
        }
      }
      await accepting;
    },
  };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 30));

Deno.test("the pool reuses the most recent connection and caps idle ones per origin", async () => {
  await using upstream = listener();
  const pool = new Pool({ maxIdlePerOrigin: 2, idleTimeoutMs: 60_000 });
  const key = `127.0.0.1:${upstream.port}`;
  const opened = await Promise.all(
    [1, 2, 3].map(() => pool.connect(key, "127.0.0.1", upstream.port)),
  );
  for (const connection of opened) pool.release(connection);
  assert.equal(pool.idleCount, 2);
  assert.equal(opened[0].closed, true, "the oldest went over the limit");
  assert.equal(pool.take(key), opened[2]);
  assert.equal(pool.take("elsewhere:1"), null);
  opened[2].close();
  pool.release(opened[2]);
  assert.equal(pool.idleCount, 1, "a closed connection is not parked");
  pool.closeIdle();
  assert.equal(pool.idleCount, 0);
  assert.equal(opened[1].closed, true);
});

Deno.test("an idle connection the upstream closes leaves the pool at once", async () => {
  await using upstream = listener();
  const pool = new Pool({ maxIdlePerOrigin: 4, idleTimeoutMs: 60_000 });
  const key = `127.0.0.1:${upstream.port}`;
  const connection = await pool.connect(key, "127.0.0.1", upstream.port);
  pool.release(connection);
  await settle();
  upstream.conns[0].close();
  await settle();
  assert.equal(pool.idleCount, 0);
  assert.equal(connection.closed, true);
  assert.equal(pool.take(key), null);
});

Deno.test("stray bytes on an idle connection discard it", async () => {
  await using upstream = listener();
  const pool = new Pool({ maxIdlePerOrigin: 4, idleTimeoutMs: 60_000 });
  const key = `127.0.0.1:${upstream.port}`;
  pool.release(await pool.connect(key, "127.0.0.1", upstream.port));
  await settle();
  await upstream.conns[0].write(new TextEncoder().encode("HTTP/1.1 200 OK\r\n\r\n"));
  await settle();
  assert.equal(pool.idleCount, 0);
});

Deno.test("idle connections are closed after the idle timeout", async () => {
  await using upstream = listener();
  const pool = new Pool({ maxIdlePerOrigin: 4, idleTimeoutMs: 100 });
  const key = `127.0.0.1:${upstream.port}`;
  const connection = await pool.connect(key, "127.0.0.1", upstream.port);
  pool.release(connection);
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.equal(pool.idleCount, 0);
  assert.equal(connection.closed, true);
});
