/**
 * The `/events` subscription across a daemon that goes away and comes back (scripted daemon).
 *
 * Run: deno test --allow-read=/tmp/nodetool-fake-docker.sock
 *   --allow-write=/tmp/nodetool-fake-docker.sock --allow-net=unix:/tmp/nodetool-fake-docker.sock
 *   src/runtimes/docker/events_test.ts
 *
 * @module
 */

import assert from "node:assert/strict";
import { DockerClient, DockerUnavailableError } from "./client.ts";
import { type DockerEvent, DockerEvents } from "./events.ts";
import { chunk, daemon, removeSocket, SOCKET } from "../../../tests/helpers/fake_docker.ts";

const die = (id: string) =>
  chunk(
    JSON.stringify({ Type: "container", Action: "die", Actor: { ID: id, Attributes: {} } }) + "\n",
  );

Deno.test("events survive a daemon restart: gaps reported, connected() follows the daemon", async () => {
  removeSocket();
  const seen: string[] = [];
  let gaps = 0;
  const events = new DockerEvents(new DockerClient(`unix://${SOCKET}`), { type: ["container"] }, {
    onEvent: (event: DockerEvent) => seen.push(event.Actor.ID),
    onGap: () => gaps++,
  }, { minMs: 20, maxMs: 50 });
  try {
    await assert.rejects(events.connected(), DockerUnavailableError, "no daemon yet");

    {
      await using first = daemon("1.41", () => [
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        die("a"),
        die("b"),
        // …and the connection closes: the daemon is going away.
      ]);
      await events.connected();
      assert.ok(first.requests.some((r) => r.startsWith("GET /v1.41/events?filters=")));
      while (seen.length < 2 || gaps < 2) await new Promise((r) => setTimeout(r, 5));
    }
    assert.deepEqual(seen.slice(0, 2), ["a", "b"]);
    // Reported: the return of the daemon (after the failed first attempt) and the stream's end.
    assert.ok(gaps >= 2, `gaps so far: ${gaps}`);
    await assert.rejects(events.connected(), DockerUnavailableError, "daemon gone");

    const before = gaps;
    await using back = daemon("1.41", () => [
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
      die("c"),
    ]);
    await events.connected();
    assert.ok(back.requests.length > 0);
    while (!seen.includes("c")) await new Promise((r) => setTimeout(r, 5));
    assert.ok(gaps > before, "a gap is reported when the daemon is back");
  } finally {
    await events.close();
  }
});
