/**
 * Service lifecycle with real child processes.
 *
 * deno test --allow-net=127.0.0.1 --allow-run=deno,ps --allow-read=. --allow-env tests/manager_test.ts
 */

import assert from "node:assert/strict";
import { ServiceUnavailableError } from "../src/services/lease.ts";
import { ServiceManager, type ServiceStatus } from "../src/services/manager.ts";
import { ProcessRuntime } from "../src/runtimes/process/runtime.ts";
import type { Runtime, Workload } from "../src/services/runtime.ts";
import {
  CountingRuntime,
  fixtureCommand,
  getText,
  processGone,
  testService,
  waitFor,
} from "./helpers/fixture_service.ts";

function setup(
  services = [testService()],
  options: { stopGraceMs?: number } = {},
) {
  const runtime = new CountingRuntime(new ProcessRuntime());
  const manager = new ServiceManager(services, { process: runtime }, options);
  return {
    runtime,
    manager,
    status: (name = "app"): ServiceStatus => manager.status().find((s) => s.name === name)!,
    [Symbol.asyncDispose]: () => manager.shutdown(2000),
  };
}

Deno.test("100 concurrent first acquires share one start and all get a lease", async () => {
  await using t = setup();
  const service = testService();
  const leases = await Promise.all(Array.from({ length: 100 }, () => t.manager.acquire(service)));
  assert.equal(t.runtime.starts, 1);
  assert.equal(leases.length, 100);
  assert.equal(new Set(leases.map((l) => l.upstream.href)).size, 1);
  for (const lease of leases) assert.ok(typeof lease.coldStartMs === "number");
  assert.equal(await getText(leases[0].upstream, "/"), "ok");
  const status = t.status();
  assert.equal(status.state, "running");
  assert.equal(status.in_flight, 100);
  assert.equal(status.starts, 1);
  assert.ok(status.last_start_ms !== null && status.last_start_ms >= 0);
  assert.ok(status.last_access !== null && !Number.isNaN(Date.parse(status.last_access)));
  for (const lease of leases) lease.release();
  leases[0].release(); // idempotent
  assert.equal(t.status().in_flight, 0);
  const warm = await t.manager.acquire(service);
  assert.equal(warm.coldStartMs, null);
  warm.release();
  assert.equal(t.runtime.starts, 1);
});

Deno.test("an idle service stops within idle_timeout + 1 s of its last release", async () => {
  await using t = setup([testService({ idle_timeout: 1 })]);
  const lease = await t.manager.acquire(testService({ idle_timeout: 1 }));
  const pid = Number(await getText(lease.upstream, "/pid"));
  lease.release();
  const released = performance.now();
  await waitFor("idle stop", () => t.status().state === "stopped", 5000);
  const elapsed = performance.now() - released;
  assert.ok(elapsed >= 950, `stopped too early: ${elapsed} ms`);
  assert.ok(elapsed < 2000, `stopped too late: ${elapsed} ms`);
  assert.equal(t.status().upstream, null);
  assert.ok(await processGone(pid), `pid ${pid} still running`);
});

Deno.test("a held lease (an open SSE stream) keeps the service past idle_timeout", async () => {
  const service = testService({ idle_timeout: 1 });
  await using t = setup([service]);
  const lease = await t.manager.acquire(service);
  const response = await fetch(new URL("/sse", lease.upstream));
  const reader = response.body!.getReader();
  const started = performance.now();
  let events = 0;
  while (performance.now() - started < 2500) {
    const { value } = await reader.read();
    if (value) events++;
    assert.equal(t.status().state, "running");
  }
  assert.ok(events >= 10, `only ${events} chunks`);
  await reader.cancel();
  lease.release();
  assert.equal(t.status().state, "running");
  await waitFor("idle stop after release", () => t.status().state === "stopped", 3000);
});

Deno.test("a crash on start fails fast with the exit code and the last output", async () => {
  const service = testService({ command: fixtureCommand("--crash-on-start"), startup_timeout: 30 });
  await using t = setup([service]);
  const began = performance.now();
  const error = await t.manager.acquire(service).then(
    () => assert.fail("acquire should fail"),
    (e: unknown) => e,
  );
  const elapsed = performance.now() - began;
  assert.ok(error instanceof ServiceUnavailableError);
  assert.ok(elapsed < 5000, `took ${elapsed} ms`);
  assert.equal(error.service, "app");
  assert.ok(error.retryAfter > 0);
  assert.match(error.message, /code 3/);
  assert.match(error.message, /fatal: cannot open the database/);
  await waitFor("failed state", () => t.status().state === "failed");
  assert.match(t.status().last_error ?? "", /code 3/);
  assert.doesNotMatch(t.status().last_error ?? "", /database/);
});

Deno.test("a service that dies while running is started again by the next acquire", async () => {
  const service = testService({ command: fixtureCommand("--crash-after=1") });
  await using t = setup([service]);
  const first = await t.manager.acquire(service);
  assert.equal(await getText(first.upstream, "/"), "ok");
  first.release();
  await waitFor("crash noticed", () => t.status().state === "stopped");
  assert.equal(t.status().crashes, 1);
  assert.match(t.status().last_error ?? "", /code 4/);
  const second = await t.manager.acquire(service);
  assert.ok(second.coldStartMs !== null);
  assert.equal(await getText(second.upstream, "/pid").then((s) => s.length > 0), true);
  second.release();
  assert.equal(t.status().starts, 2);
  assert.equal(t.runtime.starts, 2);
  assert.equal(t.status().last_error, null);
});

Deno.test("a start that outlasts startup_timeout is a 503 and the process is stopped", async () => {
  const service = testService({ command: fixtureCommand("--delay=10000"), startup_timeout: 1 });
  await using t = setup([service]);
  const began = performance.now();
  await assert.rejects(t.manager.acquire(service), (error: unknown) => {
    assert.ok(error instanceof ServiceUnavailableError);
    assert.match(error.message, /did not become ready within 1 s/);
    return true;
  });
  const elapsed = performance.now() - began;
  assert.ok(elapsed >= 950 && elapsed < 3000, `took ${elapsed} ms`);
  await waitFor("stopped after timeout", () => t.status().state === "failed");
  assert.equal(t.status().upstream, null);
});

Deno.test("health_path readiness waits for an HTTP answer", async () => {
  const service = testService({ command: fixtureCommand("--delay=300"), health_path: "/health" });
  await using t = setup([service]);
  const lease = await t.manager.acquire(service);
  assert.ok(lease.coldStartMs !== null && lease.coldStartMs >= 300);
  assert.equal(await getText(lease.upstream, "/"), "ok");
  lease.release();
});

Deno.test("url services are never started or reaped", async () => {
  const service = testService({
    name: "remote",
    runtime: "url",
    command: null,
    url: "http://user:secret@127.0.0.1:9/api",
    idle_timeout: 1,
  });
  await using t = setup([service]);
  const lease = await t.manager.acquire(service);
  assert.equal(lease.upstream.href, "http://user:secret@127.0.0.1:9/api");
  assert.equal(lease.coldStartMs, null);
  assert.equal(t.status("remote").in_flight, 1);
  lease.release();
  await new Promise((resolve) => setTimeout(resolve, 1300));
  const status = t.status("remote");
  assert.equal(status.state, "running");
  assert.equal(status.upstream, "http://127.0.0.1:9/api");
  assert.equal(status.starts, 0);
  assert.equal(t.runtime.starts, 0);
});

Deno.test("an acquire during a stop waits for it, then starts the service again", async () => {
  const service = testService({ command: fixtureCommand("--ignore-sigterm"), idle_timeout: 1 });
  await using t = setup([service], { stopGraceMs: 700 });
  (await t.manager.acquire(service)).release();
  await waitFor("stopping", () => t.status().state === "stopping", 3000);
  const lease = await t.manager.acquire(service);
  assert.ok(lease.coldStartMs !== null && lease.coldStartMs > 0);
  assert.equal(t.status().state, "running");
  assert.equal(t.status().starts, 2);
  assert.equal(await getText(lease.upstream, "/"), "ok");
  lease.release();
});

Deno.test("shutdown stops every started service and leaves no child process", async () => {
  const services = [
    testService({ name: "a", path: "/a" }),
    testService({ name: "b", path: "/b", command: fixtureCommand("--ignore-sigterm") }),
    testService({ name: "c", path: "/c" }),
  ];
  const t = setup(services);
  const pids: number[] = [];
  for (const service of services.slice(0, 2)) {
    const lease = await t.manager.acquire(service);
    pids.push(Number(await getText(lease.upstream, "/pid")));
    lease.release();
  }
  const began = performance.now();
  await t.manager.shutdown(300);
  assert.ok(performance.now() - began < 2000);
  for (const pid of pids) assert.ok(await processGone(pid), `pid ${pid} outlived shutdown`);
  assert.deepEqual(t.manager.status().map((s) => s.state), ["stopped", "stopped", "stopped"]);
  await assert.rejects(t.manager.acquire(services[2]), ServiceUnavailableError);
});

Deno.test("shutdown abandons a start in progress and stops its process", async () => {
  const service = testService({ command: fixtureCommand("--delay=10000") });
  const t = setup([service]);
  const outcome = t.manager.acquire(service).then(() => null, (error: unknown) => error);
  await waitFor("spawned", () => t.status().upstream !== null);
  await t.manager.shutdown(300);
  assert.ok(await outcome instanceof ServiceUnavailableError);
  assert.equal((await t.runtime.workloads[0].exited).signal, "SIGTERM");
  assert.equal(t.status().state, "failed");
  assert.match(t.status().last_error ?? "", /shutting down/);
});

/** A workload that needs no process: ready after a few polls, stoppable. */
function fakeWorkload(readyAfter: number): Workload & { stops: number } {
  let polls = 0;
  let exit: (code: number) => void = () => {};
  const exited = new Promise<{ code: number }>((resolve) => exit = (code) => resolve({ code }));
  return {
    upstream: new URL("http://127.0.0.1:1"),
    exited,
    stops: 0,
    ready: () => Promise.resolve(++polls > readyAfter),
    logTail: () => "",
    stop(this: { stops: number }) {
      this.stops++;
      exit(0);
      return exited.then(() => {});
    },
  };
}

Deno.test("a workload's own readiness check is polled until it says ready", async () => {
  const workload = fakeWorkload(3);
  const runtime: Runtime = { kind: "docker", start: () => Promise.resolve(workload) };
  const service = testService({ runtime: "docker", command: null, image: "x" });
  const manager = new ServiceManager([service], { docker: runtime });
  const lease = await manager.acquire(service);
  assert.equal(lease.upstream.href, "http://127.0.0.1:1/");
  lease.release();
  await manager.shutdown(100);
  assert.equal(workload.stops, 1);
});

Deno.test("adopted workloads are running at once and stopped on shutdown", async () => {
  const workload = fakeWorkload(0);
  let closed = false;
  const runtime: Runtime = {
    kind: "docker",
    start: () => Promise.reject(new Error("should not start")),
    adopt: (services) => Promise.resolve(new Map(services.map((s) => [s.name, workload]))),
    close: () => Promise.resolve(void (closed = true)),
  };
  const service = testService({ runtime: "docker", command: null, image: "x" });
  const manager = new ServiceManager([service], { docker: runtime });
  await manager.adopt();
  assert.equal(manager.status()[0].state, "running");
  const lease = await manager.acquire(service);
  assert.equal(lease.coldStartMs, null);
  lease.release();
  await manager.shutdown(100);
  assert.equal(workload.stops, 1);
  assert.ok(closed);
  assert.equal(manager.status()[0].starts, 0);
});

Deno.test("a service without its runtime answers 503, and an aborted wait rejects", async () => {
  const service = testService({ runtime: "docker", command: null, image: "x" });
  const manager = new ServiceManager([service], {});
  await assert.rejects(manager.acquire(service), /no docker runtime is configured/);
  const never: Runtime = { kind: "docker", start: () => new Promise(() => {}) };
  const stuck = new ServiceManager([service], { docker: never });
  const abort = new AbortController();
  const pending = stuck.acquire(service, abort.signal);
  abort.abort(new Error("client left"));
  await assert.rejects(pending, /client left/);
  await stuck.shutdown(100);
  await manager.shutdown(100);
  await assert.rejects(manager.acquire(testService({ name: "other" })), RangeError);
});
