/**
 * Engine API client against a scripted server on a temporary unix socket: framing
 * (Content-Length, chunked split across writes, read-until-close), typed errors, version
 * negotiation, streaming JSON and log demultiplexing. Needs no dockerd.
 *
 * Run: deno test --allow-read=/tmp/nodetool-fake-docker.sock
 *   --allow-write=/tmp/nodetool-fake-docker.sock --allow-net=unix:/tmp/nodetool-fake-docker.sock
 *   src/runtimes/docker/client_test.ts
 * (Deno grants unix sockets by exact path: the fake daemon listens on a fixed one.)
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  DockerClient,
  DockerConflictError,
  DockerDaemonError,
  DockerNotFoundError,
  DockerUnavailableError,
  MAX_API_VERSION,
  socketPath,
} from "./client.ts";

import { chunk, daemon, json, removeSocket, SOCKET } from "../../../tests/helpers/fake_docker.ts";

const encoder = new TextEncoder();

Deno.test("socketPath accepts unix:// and absolute paths, rejects tcp://", () => {
  assert.equal(socketPath("unix:///var/run/docker.sock"), "/var/run/docker.sock");
  assert.equal(socketPath("/run/user/1000/docker.sock"), "/run/user/1000/docker.sock");
  assert.throws(() => socketPath("tcp://127.0.0.1:2375"), /only unix:\/\/ sockets/);
});

Deno.test("negotiates the version, capped at the newest the client knows", async () => {
  await using fake = daemon("1.99", () => [json(200, { ok: true })]);
  const docker = fake.client();
  assert.equal(await docker.apiVersion(), MAX_API_VERSION);
  assert.deepEqual(await docker.json("GET", "/info"), { ok: true });
  assert.deepEqual(fake.requests, [
    "GET /version HTTP/1.1",
    `GET /v${MAX_API_VERSION}/info HTTP/1.1`,
  ]);
});

Deno.test("follows an older daemon's version and refuses one older than 1.41", async () => {
  await using older = daemon("1.43", () => [json(200, {})]);
  assert.equal(await older.client().apiVersion(), "1.43");
  await using ancient = daemon("1.40", () => [json(200, {})]);
  await assert.rejects(ancient.client().apiVersion(), /1\.40 is too old: 1\.41 or newer/);
});

Deno.test("decodes a chunked body split mid-chunk and mid-size-line", async () => {
  await using fake = daemon("1.41", () => [
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
    "5\r\nhel",
    "lo\r\n",
    "1",
    "0\r\n0123456789abcdef\r\n0\r\n\r\n",
  ]);
  const res = await fake.client().request("GET", "/x");
  assert.equal(await res.text(), "hello0123456789abcdef");
});

Deno.test("reads a body without framing until the daemon closes", async () => {
  await using fake = daemon("1.41", () => ["HTTP/1.1 200 OK\r\n\r\npart one, ", "part two"]);
  assert.equal(await (await fake.client().request("GET", "/x")).text(), "part one, part two");
});

Deno.test("a body cut short of its Content-Length is an error", async () => {
  await using fake = daemon("1.41", () => ["HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"]);
  const res = await fake.client().request("GET", "/x");
  await assert.rejects(res.text(), /closed before the response body was complete/);
});

Deno.test("error statuses become typed errors that keep the daemon's message", async () => {
  await using fake = daemon("1.41", (head) => {
    if (head.includes("/missing")) return [json(404, { message: "No such container: web" })];
    if (head.includes("/taken")) return [json(409, { message: 'name "/web" is already in use' })];
    return [json(500, { message: "driver failed programming external connectivity" })];
  });
  const docker = fake.client();
  await assert.rejects(docker.json("GET", "/missing"), (e: Error) => {
    assert.ok(e instanceof DockerNotFoundError);
    assert.equal(e.message, "No such container: web");
    return true;
  });
  await assert.rejects(docker.json("POST", "/taken"), DockerConflictError);
  await assert.rejects(docker.json("POST", "/broken"), (e: Error) => {
    assert.ok(e instanceof DockerDaemonError && e.status === 500);
    assert.equal(e.message, "driver failed programming external connectivity");
    return true;
  });
});

Deno.test("sends JSON bodies and JSON-encoded filters, repeats array parameters", async () => {
  let seen = { head: "", body: "" };
  await using fake = daemon("1.41", (head, body) => {
    seen = { head, body };
    return [json(201, { Id: "abc" })];
  });
  const created = await fake.client().json<{ Id: string }>("POST", "/containers/create", {
    query: { name: "web", filters: { label: ["a=b"] }, changes: ["CMD x", "ENV y=1"] },
    body: { Image: "busybox" },
  });
  assert.equal(created.Id, "abc");
  const target = new URL(seen.head.split(" ")[1], "http://docker");
  assert.equal(target.pathname, "/v1.41/containers/create");
  assert.equal(target.searchParams.get("filters"), '{"label":["a=b"]}');
  assert.deepEqual(target.searchParams.getAll("changes"), ["CMD x", "ENV y=1"]);
  assert.match(seen.head, /Content-Type: application\/json/);
  assert.deepEqual(JSON.parse(seen.body), { Image: "busybox" });
});

Deno.test("streams JSON lines and throws an in-stream error", async () => {
  await using fake = daemon("1.41", () => [
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
    chunk('{"status":"Pulling"}\r\n{"st'),
    chunk('atus":"Waiting"}\r\n{"error'),
    chunk('":"manifest unknown"}\r\n'),
    "0\r\n\r\n",
  ]);
  const seen: unknown[] = [];
  await assert.rejects(
    (async () => {
      for await (const doc of fake.client().stream("POST", "/images/create")) seen.push(doc);
    })(),
    (e: Error) => e instanceof DockerDaemonError && e.message === "manifest unknown",
  );
  assert.deepEqual(seen, [{ status: "Pulling" }, { status: "Waiting" }]);
});

Deno.test("demultiplexes stdout and stderr log frames split across reads", async () => {
  const frame = (stream: number, text: string) => {
    const data = encoder.encode(text);
    const out = new Uint8Array(8 + data.byteLength);
    out[0] = stream;
    new DataView(out.buffer).setUint32(4, data.byteLength);
    out.set(data, 8);
    return out;
  };
  const both = new Uint8Array([...frame(1, "out line\n"), ...frame(2, "err line\n")]);
  await using fake = daemon("1.41", () => [
    `HTTP/1.1 200 OK\r\nContent-Length: ${both.byteLength}\r\n\r\n`,
    both.subarray(0, 5),
    both.subarray(5, 20),
    both.subarray(20),
  ]);
  const frames = await fake.client().logs("web", 20);
  assert.deepEqual(
    frames.map((f) => [f.stream, new TextDecoder().decode(f.data)]),
    [["stdout", "out line\n"], ["stderr", "err line\n"]],
  );
});

Deno.test("a cancelled stream closes its connection; an aborted call rejects", async () => {
  await using fake = daemon("1.41", () => [
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
    chunk('{"Action":"die"}\n'),
    chunk('{"Action":"die"}\n'),
  ]);
  const docker = fake.client();
  const res = await docker.request("GET", "/events");
  const reader = res.body!.getReader();
  assert.ok((await reader.read()).value);
  await reader.cancel();
  const controller = new AbortController();
  const pending = docker.request("GET", "/events", { signal: controller.signal })
    .then((r) => r.text());
  controller.abort(new Error("gave up"));
  await assert.rejects(pending, /gave up/);
});

Deno.test("a missing socket is DockerUnavailableError naming it", async () => {
  removeSocket();
  const docker = new DockerClient(`unix://${SOCKET}`);
  await assert.rejects(docker.ping(), (e: Error) => {
    assert.ok(e instanceof DockerUnavailableError);
    assert.equal(e.message, `Docker socket ${SOCKET} does not exist (is dockerd running?)`);
    return true;
  });
});
