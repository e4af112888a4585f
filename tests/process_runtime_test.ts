/**
 * The process runtime with real child processes.
 *
 * deno test --allow-net=127.0.0.1 --allow-run=deno,ps --allow-read=. --allow-env tests/process_runtime_test.ts
 */

import assert from "node:assert/strict";
import { OutputTail, pumpLines } from "../src/runtimes/process/output.ts";
import { ProcessRuntime } from "../src/runtimes/process/runtime.ts";
import { fixtureCommand, testService, waitFor } from "./helpers/fixture_service.ts";

const never = new AbortController().signal;

async function accepts(url: URL): Promise<boolean> {
  try {
    (await Deno.connect({ hostname: url.hostname, port: Number(url.port) })).close();
    return true;
  } catch {
    return false;
  }
}

Deno.test("a child gets PORT, HOST, its environment and none of the proxy's secrets", async () => {
  Deno.env.set("NODETOOL_TEST_SECRET", "hunter2");
  try {
    const service = testService({
      command: ["deno", "eval", "console.log(JSON.stringify(Deno.env.toObject()))"],
      environment: { FOO: "bar", PORT: "1" },
    });
    const workload = await new ProcessRuntime().start(service, never);
    assert.deepEqual(await workload.exited, { code: 0, signal: null });
    const env = JSON.parse(workload.logTail());
    assert.equal(env.PORT, workload.upstream.port);
    assert.notEqual(env.PORT, "1");
    assert.equal(env.HOST, "127.0.0.1");
    assert.equal(env.FOO, "bar");
    assert.ok(env.PATH);
    assert.equal(env.NODETOOL_TEST_SECRET, undefined);
    assert.equal(workload.upstream.hostname, "127.0.0.1");
  } finally {
    Deno.env.delete("NODETOOL_TEST_SECRET");
  }
});

Deno.test("host_port is used when set", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  const workload = await new ProcessRuntime().start(testService({ host_port: port }), never);
  assert.equal(workload.upstream.href, `http://127.0.0.1:${port}/`);
  await waitFor("listening", () => accepts(workload.upstream));
  await workload.stop(2000);
  assert.equal((await workload.exited).signal, "SIGTERM");
});

Deno.test("stop escalates to SIGKILL when SIGTERM is ignored", async () => {
  const service = testService({ command: fixtureCommand("--ignore-sigterm") });
  const workload = await new ProcessRuntime().start(service, never);
  await waitFor("listening", () => accepts(workload.upstream));
  const began = performance.now();
  await workload.stop(300);
  const elapsed = performance.now() - began;
  assert.ok(elapsed >= 290 && elapsed < 2000, `stop took ${elapsed} ms`);
  assert.deepEqual(await workload.exited, { code: null, signal: "SIGKILL" });
  assert.match(workload.logTail(), /ignoring SIGTERM/);
  await workload.stop(300); // stopping a stopped workload is a no-op
});

Deno.test("exit code and the last 50 output lines are kept", async () => {
  const script = "for (let i = 0; i < 120; i++) console.log('line ' + i); Deno.exit(7)";
  const workload = await new ProcessRuntime().start(
    testService({ command: ["deno", "eval", script] }),
    never,
  );
  assert.deepEqual(await workload.exited, { code: 7, signal: null });
  const lines = workload.logTail().split("\n");
  assert.equal(lines.length, 50);
  assert.equal(lines[0], "line 70");
  assert.equal(lines[49], "line 119");
});

Deno.test("a program that cannot run is a clear error", async () => {
  const service = testService({ command: ["deno-no-such-program-here"] });
  await assert.rejects(
    new ProcessRuntime().start(service, never),
    /Cannot run "deno-no-such-program-here" for "app"/,
  );
});

Deno.test("output lines: CRLF, a final partial line, long lines split, ring order", async () => {
  const tail = new OutputTail(3);
  const chunks = ["a\r\nb", "\nc\n", "x".repeat(5000), "\nlast"];
  const stream = ReadableStream.from(chunks.map((c) => new TextEncoder().encode(c)));
  const lines: string[] = [];
  await pumpLines(stream, (line) => {
    lines.push(line);
    tail.push(line);
  }, never);
  assert.deepEqual(lines.map((l) => l.length > 10 ? l.length : l), [
    "a",
    "b",
    "c",
    4096,
    904,
    "last",
  ]);
  assert.equal(tail.text(), ["x".repeat(4096), "x".repeat(904), "last"].join("\n"));
  assert.throws(() => new OutputTail(0), RangeError);
});
