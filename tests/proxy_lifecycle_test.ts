/**
 * The on-demand lifecycle through the real proxy process: single-flight cold start, idle stop,
 * crashes on start and while running, graceful shutdown, and `Server-Timing`.
 *
 * Run with `--allow-net=127.0.0.1 --allow-read=.,/tmp --allow-write=/tmp --allow-run=deno,ps
 * --allow-env`.
 */

import assert from "node:assert/strict";
import { fixtureCommand, processGone, waitFor } from "./helpers/fixture_service.ts";
import type { LogLine } from "./helpers/logged_process.ts";
import { logGapMs, type ProxyProcess, startProxy } from "./helpers/proxy_process.ts";

/** The status entry of `name`. */
async function statusOf(proxy: ProxyProcess, name: string) {
  const response = await fetch(new URL("/proxy/status", proxy.url), { headers: proxy.auth });
  assert.equal(response.status, 200);
  const status = await response.json();
  return status.services.find((s: { name: string }) => s.name === name);
}

const isStop = (service: string) => (line: LogLine) =>
  line.msg === "service stopped" && line.service === service;

Deno.test("100 concurrent first requests cause one start and 100 successes", async () => {
  await using proxy = await startProxy({
    services: [{ name: "app", path: "/app", command: fixtureCommand("--delay=300") }],
  });
  const responses = await Promise.all(
    Array.from(
      { length: 100 },
      () => fetch(new URL("/app/pid", proxy.url), { headers: proxy.auth }),
    ),
  );
  const bodies = await Promise.all(responses.map((r) => r.text()));
  assert.deepEqual(responses.map((r) => r.status), Array(100).fill(200));
  assert.equal(new Set(bodies).size, 1, `several upstreams answered: ${[...new Set(bodies)]}`);
  assert.match(bodies[0], /^\d+$/);
  assert.equal(proxy.logsOf("service starting", "app").length, 1);
  assert.equal(proxy.logsOf("service ready", "app").length, 1);
  assert.equal((await statusOf(proxy, "app")).starts, 1);
});

Deno.test("a cold start adds Server-Timing: cold-start, a warm request does not", async () => {
  await using proxy = await startProxy({
    services: [{ name: "app", path: "/app", command: fixtureCommand() }],
  });
  const cold = await fetch(new URL("/app/", proxy.url), { headers: proxy.auth });
  assert.equal(cold.status, 200);
  assert.match(cold.headers.get("server-timing") ?? "", /^cold-start;dur=\d+$/);
  await cold.body?.cancel();
  const warm = await fetch(new URL("/app/", proxy.url), { headers: proxy.auth });
  assert.equal(warm.status, 200);
  assert.equal(warm.headers.get("server-timing"), null);
  await warm.body?.cancel();
  const [first] = await waitForAccess(proxy, 2);
  assert.equal(typeof first.coldStartMs, "number");
});

/** The first `count` access lines, once written. */
async function waitForAccess(proxy: ProxyProcess, count: number): Promise<LogLine[]> {
  await waitFor(`${count} access lines`, () => proxy.logsOf("request").length >= count, 5000);
  return proxy.logsOf("request");
}

Deno.test("an idle service stops within idle_timeout + 1 s of its last request", async () => {
  await using proxy = await startProxy({
    global: { idle_timeout: 1 },
    services: [{ name: "app", path: "/app", command: fixtureCommand() }],
  });
  const response = await fetch(new URL("/app/pid", proxy.url), { headers: proxy.auth });
  const pid = Number(await response.text());
  const [access] = await waitForAccess(proxy, 1);
  const stopped = await proxy.waitForLog(isStop("app"), 5000);
  assert.equal(stopped.reason, "idle");
  const gap = logGapMs(access, stopped);
  assert.ok(gap >= 1000 - 20 && gap <= 2000, `stopped ${gap} ms after the last request ended`);
  await waitFor("the fixture to exit", () => processGone(pid), 3000);
  assert.equal((await statusOf(proxy, "app")).state, "stopped");

  const again = await fetch(new URL("/app/pid", proxy.url), { headers: proxy.auth });
  assert.equal(again.status, 200);
  assert.notEqual(Number(await again.text()), pid);
  assert.equal((await statusOf(proxy, "app")).starts, 2);
});

Deno.test("a service that exits while starting fails fast with its exit code", async () => {
  await using proxy = await startProxy({
    services: [{
      name: "app",
      path: "/app",
      command: fixtureCommand("--crash-on-start"),
      startup_timeout: 30,
    }],
  });
  const began = performance.now();
  const response = await fetch(new URL("/app/", proxy.url), { headers: proxy.auth });
  const elapsed = performance.now() - began;
  assert.equal(response.status, 503);
  assert.equal(response.headers.get("content-type"), "application/problem+json");
  assert.match(response.headers.get("retry-after") ?? "", /^\d+$/);
  const problem = await response.json();
  assert.match(problem.detail, /exited with code 3\b/);
  assert.match(problem.detail, /cannot open the database/);
  // Far below startup_timeout (30 s): it failed on the exit, not on the timer.
  assert.ok(elapsed < 10_000, `took ${elapsed} ms`);
  const status = await statusOf(proxy, "app");
  assert.equal(status.state, "failed");
  assert.match(status.last_error, /code 3\b/);
});

Deno.test("a service that crashes while running is started again by the next request", async () => {
  await using proxy = await startProxy({
    services: [{ name: "app", path: "/app", command: fixtureCommand("--crash-after=1") }],
  });
  const first = await fetch(new URL("/app/pid", proxy.url), { headers: proxy.auth });
  assert.equal(first.status, 200);
  const pid = Number(await first.text());
  await proxy.waitForLog((l) => l.msg === "service exited" && l.service === "app", 5000);
  await waitFor("the fixture to exit", () => processGone(pid), 3000);
  const crashed = await statusOf(proxy, "app");
  assert.equal(crashed.state, "stopped");
  assert.equal(crashed.crashes, 1);

  const second = await fetch(new URL("/app/pid", proxy.url), { headers: proxy.auth });
  assert.equal(second.status, 200);
  assert.notEqual(Number(await second.text()), pid);
  const status = await statusOf(proxy, "app");
  assert.equal(status.starts, 2);
  assert.equal(status.state, "running");
  assert.equal(proxy.logsOf("service starting", "app").length, 2);
});

Deno.test("SIGTERM lets an in-flight request finish, exits 0 and leaves no child", async () => {
  await using proxy = await startProxy({
    global: { shutdown_grace: 10 },
    services: [{ name: "app", path: "/app", command: fixtureCommand() }],
  });
  const warm = await fetch(new URL("/app/pid", proxy.url), { headers: proxy.auth });
  const pid = Number(await warm.text());
  const slow = fetch(new URL("/app/slow?ms=1500", proxy.url), { headers: proxy.auth });
  await waitFor("the slow request to be in flight", async () => {
    return (await statusOf(proxy, "app")).in_flight === 1;
  }, 5000);
  const exitCode = proxy.stop("SIGTERM");
  const response = await slow;
  assert.equal(response.status, 200);
  assert.equal(await response.text(), "slow");
  assert.equal(await exitCode, 0);
  assert.ok(await processGone(pid), `fixture ${pid} outlived the proxy`);
  const stopped = proxy.logsOf("service stopped", "app");
  assert.equal(stopped.length, 1);
  assert.equal(stopped[0].reason, "shutdown");
  const shutdown = proxy.logs().findIndex((l) => l.msg === "shutting down");
  const finished = proxy.logs().findIndex((l) => l.msg === "request" && l.path === "/app/slow");
  assert.ok(shutdown >= 0 && finished > shutdown, "the slow request ended after SIGTERM");
});
