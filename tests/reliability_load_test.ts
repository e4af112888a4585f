/**
 * Load with churn: 20,000 requests at concurrency 100 across three routes while the idle
 * reaper stops one of them (a process service with `idle_timeout: 1`) again and again, and
 * the next burst starts it again. Every response must be 2xx; afterwards no service process
 * is left and Deno's sanitizers see no socket, timer or child process of the proxy open.
 *
 * Run with `--allow-net=127.0.0.1 --allow-read=.,/tmp --allow-write=/tmp --allow-run=deno,ps
 * --allow-env tests/reliability_load_test.ts`.
 */

import assert from "node:assert/strict";
import { processGone, waitFor } from "./helpers/fixture_service.ts";
import { hammer, killableCommand, startApp } from "./helpers/reliability.ts";

const TOTAL = 20_000;
const CONCURRENCY = 100;
/** The churned route gets traffic for this long… */
const BURST_MS = 200;
/** …then none for this long: more than its 1 s idle timeout, so the reaper stops it. */
const PAUSE_MS = 1300;

Deno.test("20,000 requests over three routes while the reaper stops and restarts one", async () => {
  const upstream = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response("ok"),
  );
  const url = `http://127.0.0.1:${upstream.addr.port}`;
  const pids = new Set<number>();
  try {
    await using proxy = await startApp([
      { name: "steady", path: "/steady", url },
      { name: "also", path: "/also", url },
      {
        name: "churn",
        path: "/churn",
        command: killableCommand(),
        idle_timeout: 1,
        startup_timeout: 20,
      },
    ]);
    const started = performance.now();
    const churnOpen = () => (performance.now() - started) % (BURST_MS + PAUSE_MS) < BURST_MS;
    const report = await hammer(
      TOTAL,
      CONCURRENCY,
      (i) => {
        if (i % 4 === 0 && churnOpen()) return `${proxy.base}/churn/pid`;
        return `${proxy.base}/${i % 2 ? "steady" : "also"}/x`;
      },
      (status, body) => {
        if (body !== "ok" && status === 200) pids.add(Number(body));
        return status >= 200 && status < 300;
      },
    );
    const churn = proxy.service("churn");
    const unexpected = [...report.statuses].filter(([status]) => status < 200 || status > 299);
    assert.deepEqual(unexpected, [], `unexpected outcomes:\n${report.samples.join("\n")}`);
    assert.equal([...report.statuses.values()].reduce((a, b) => a + b), TOTAL);
    assert.ok(churn.starts >= 3, `the churned service started only ${churn.starts} time(s)`);
    assert.equal(churn.crashes, 0);
    assert.ok(pids.size >= 3, `only ${pids.size} distinct service process(es) answered`);
    await waitFor(
      "in-flight counts to drain",
      () => proxy.app.manager.status().every((s) => s.in_flight === 0),
      5000,
    );
  } finally {
    await upstream.shutdown();
  }
  for (const pid of pids) {
    assert.ok(await processGone(pid), `service pid ${pid} outlived the proxy`);
  }
});
