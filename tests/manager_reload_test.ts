/**
 * Reloading the service list under a running manager, with real child processes.
 *
 * deno test --allow-net=127.0.0.1 --allow-run=deno,ps --allow-read=. --allow-env tests/manager_reload_test.ts
 */

import assert from "node:assert/strict";
import { ProcessRuntime } from "../src/runtimes/process/runtime.ts";
import { ServiceManager } from "../src/services/manager.ts";
import { CountingRuntime, getText, testService, waitFor } from "./helpers/fixture_service.ts";

function setup(services = [testService()]) {
  const runtime = new CountingRuntime(new ProcessRuntime());
  const manager = new ServiceManager(services, { process: runtime }, { stopGraceMs: 2000 });
  const state = (name: string) => manager.status().find((s) => s.name === name)?.state;
  return { runtime, manager, state, [Symbol.asyncDispose]: () => manager.shutdown(2000) };
}

Deno.test("reload keeps an unchanged service running: same process, no new start", async () => {
  const app = testService();
  await using t = setup([app]);
  const lease = await t.manager.acquire(app);
  const pid = await getText(lease.upstream, "/pid");
  lease.release();
  t.manager.reconfigure([testService(), testService({ name: "other", path: "/other" })]);
  const again = await t.manager.acquire(testService());
  assert.equal(await getText(again.upstream, "/pid"), pid);
  again.release();
  assert.equal(t.runtime.starts, 1);
  assert.deepEqual(t.manager.status().map((s) => s.name), ["app", "other"]);
});

Deno.test("reload stops a removed service only after its in-flight lease ends", async () => {
  const app = testService();
  await using t = setup([app]);
  const lease = await t.manager.acquire(app);
  t.manager.reconfigure([]);
  assert.deepEqual(t.manager.status(), []);
  // Still in flight: the old process keeps answering.
  assert.equal(await getText(lease.upstream, "/"), "ok");
  const workload = t.runtime.workloads[0];
  let exited = false;
  void workload.exited.then(() => exited = true);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(exited, false, "stopped while a lease was held");
  lease.release();
  await waitFor("removed service stopped", () => exited, 5000);
});

Deno.test("reload replaces a changed service: the new version starts after the old stops", async () => {
  const v1 = testService({ environment: { VERSION: "1" } });
  await using t = setup([v1]);
  const old = await t.manager.acquire(v1);
  const oldPid = await getText(old.upstream, "/pid");
  const v2 = testService({ environment: { VERSION: "2" } });
  t.manager.reconfigure([v2]);
  const pending = t.manager.acquire(v2);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(t.runtime.starts, 1, "new version started while the old one still served");
  old.release();
  const fresh = await pending;
  assert.notEqual(await getText(fresh.upstream, "/pid"), oldPid);
  fresh.release();
  assert.equal(t.runtime.starts, 2);
  assert.equal(t.state("app"), "running");
});
