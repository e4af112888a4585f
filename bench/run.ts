/**
 * `deno task bench`: the proxy against nginx, caddy, a bare Deno `fetch` forwarder and the
 * upstream itself, all on loopback.
 *
 * Starts nginx as the upstream (1 KiB at `/1k`, 10 MiB at `/10m`), the proxy with a warm
 * `url:` route to it, nginx and caddy as reverse proxies and the bare forwarder; then runs
 * wrk at 50 and 200 connections and a download round, in interleaved rounds (medians), RSS of
 * each target sampled under load and with 1,000 idle keep-alive connections, and WebSocket
 * echoes per second through the proxy and direct. Prints Markdown tables and writes them to
 * `bench/results/latest.md`, with the raw figures in `bench/results/latest.json`.
 *
 * Run: deno run --allow-run=nginx,caddy,wrk,deno,ps,lscpu --allow-net=127.0.0.1
 *   --allow-read=.,/tmp --allow-write=/tmp,bench/results --allow-env
 *   bench/run.ts [--seconds=5] [--rounds=3]
 *
 * @module
 */

import { VERSION } from "../src/version.ts";
import { openIdle } from "./idle.ts";
import { startProxy } from "./proxy.ts";
import { freePort, rssMiB, spawn, type Spawned, waitForPort } from "./processes.ts";
import {
  LARGE_BYTES,
  SMALL_BYTES,
  startCaddy,
  startNginxProxy,
  startUpstream,
} from "./references.ts";
import { fixed, median, ratio } from "./stats.ts";
import { runWrk, type WrkResult } from "./wrk.ts";
import { wsMessageRate } from "./ws_load.ts";

const args = new Map(Deno.args.map((a) => a.replace(/^--/, "").split("=") as [string, string]));
const SECONDS = Number(args.get("seconds") ?? 5);
const ROUNDS = Number(args.get("rounds") ?? 3);
const DOWNLOAD_SECONDS = 3;
const IDLE_CONNECTIONS = 1000;
const CONCURRENCY = [50, 200] as const;
const TOKEN = crypto.randomUUID().replaceAll("-", "") + crypto.randomUUID().replaceAll("-", "");
const AUTH = { authorization: `Bearer ${TOKEN}` };
const here = (path: string) => new URL(path, import.meta.url).pathname;

/** Something wrk is pointed at. */
interface Target {
  readonly name: string;
  readonly port: number;
  /** The process whose RSS is the target's (for direct: the upstream). */
  readonly pid: number;
}

/** Everything measured for one target. */
interface TargetFigures {
  load: Record<number, WrkResult[]>;
  download: WrkResult[];
  rssLoadMiB: number[];
  idle?: { beforeMiB: number; afterMiB: number };
}

function startDeno(name: string, script: string, ...scriptArgs: string[]): Spawned {
  return spawn(name, "deno", ["run", "--allow-net=127.0.0.1", here(script), ...scriptArgs]);
}

/** Fails early when a target does not answer `/1k` with the right body. */
async function check(target: Target): Promise<void> {
  const response = await fetch(`http://127.0.0.1:${target.port}/1k`, { headers: AUTH });
  const body = await response.bytes();
  if (response.status !== 200 || body.length !== SMALL_BYTES) {
    throw new Error(`${target.name} answered ${response.status} with ${body.length} bytes`);
  }
}

async function machine(): Promise<string> {
  const { stdout } = await new Deno.Command("lscpu", { stdout: "piped" }).output();
  const model = /^Model name:\s*(.+)$/m.exec(new TextDecoder().decode(stdout))?.[1] ??
    "unknown CPU";
  return `${navigator.hardwareConcurrency} cores, ${model}`;
}

async function measure(targets: Target[], wsPorts: { direct: number; proxy: number }) {
  const figures = new Map<string, TargetFigures>(
    targets.map((t) => [t.name, { load: { 50: [], 200: [] }, download: [], rssLoadMiB: [] }]),
  );
  const url = (t: Target, path: string) => `http://127.0.0.1:${t.port}${path}`;
  for (const t of targets) {
    await runWrk(
      { url: url(t, "/1k"), connections: 50, seconds: 1, headers: AUTH },
      async () => {},
    );
  }
  for (let round = 1; round <= ROUNDS; round++) {
    for (const connections of CONCURRENCY) {
      for (const t of targets) {
        const { result, sample } = await runWrk(
          { url: url(t, "/1k"), connections, seconds: SECONDS, headers: AUTH },
          () => rssMiB(t.pid),
        );
        const f = figures.get(t.name)!;
        f.load[connections].push(result);
        f.rssLoadMiB.push(sample);
        console.error(`round ${round} c${connections} ${t.name}: ${fixed(result.rps)} req/s`);
      }
    }
    for (const t of targets) {
      const { result, sample } = await runWrk(
        { url: url(t, "/10m"), connections: 4, seconds: DOWNLOAD_SECONDS, headers: AUTH },
        () => rssMiB(t.pid),
      );
      const f = figures.get(t.name)!;
      f.download.push(result);
      f.rssLoadMiB.push(sample);
      console.error(`round ${round} download ${t.name}: ${fixed(result.bytesPerSec / 1e6)} MB/s`);
    }
  }
  for (const t of targets.slice(1)) {
    const beforeMiB = await rssMiB(t.pid);
    await using _idle = await openIdle(t.port, "/1k", AUTH, IDLE_CONNECTIONS);
    await new Promise((resolve) => setTimeout(resolve, 500));
    figures.get(t.name)!.idle = { beforeMiB, afterMiB: await rssMiB(t.pid) };
  }
  const ws = { direct: [] as number[], proxy: [] as number[] };
  for (let round = 1; round <= ROUNDS; round++) {
    ws.direct.push(await wsMessageRate(`ws://127.0.0.1:${wsPorts.direct}/`, {}, 3));
    ws.proxy.push(await wsMessageRate(`ws://127.0.0.1:${wsPorts.proxy}/ws`, AUTH, 3));
  }
  return { figures, ws };
}

/** Medians of one target's rounds. */
function summarize(f: TargetFigures) {
  const at = (c: number) => ({
    rps: median(f.load[c].map((r) => r.rps)),
    p50Ms: median(f.load[c].map((r) => r.p50Ms)),
    p99Ms: median(f.load[c].map((r) => r.p99Ms)),
    errors: f.load[c].reduce((n, r) => n + r.errors, 0),
  });
  return {
    c50: at(50),
    c200: at(200),
    downloadMBps: median(f.download.map((r) => r.bytesPerSec / 1e6)),
    downloadErrors: f.download.reduce((n, r) => n + r.errors, 0),
    rssLoadMiB: Math.max(...f.rssLoadMiB),
    idle: f.idle ?? null,
  };
}

type Summary = ReturnType<typeof summarize>;

function tables(rows: [string, Summary][], ws: { direct: number; proxy: number }): string {
  const direct = rows.find(([name]) => name === "direct")![1];
  const bare = rows.find(([name]) => name === "bare Deno fetch forwarder")![1];
  const out: string[] = [];
  for (const c of ["c50", "c200"] as const) {
    out.push(
      `### 1 KiB responses, wrk -t1 -${c}`,
      "",
      "| target | req/s | × direct | × bare | p50 ms | p99 ms | p99 × bare | errors |",
      "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
      ...rows.map(([name, s]) =>
        `| ${name} | ${fixed(s[c].rps)} | ${ratio(s[c].rps, direct[c].rps)} | ` +
        `${ratio(s[c].rps, bare[c].rps)} | ${fixed(s[c].p50Ms, 2)} | ${fixed(s[c].p99Ms, 2)} | ` +
        `${ratio(s[c].p99Ms, bare[c].p99Ms)} | ${s[c].errors} |`
      ),
      "",
    );
  }
  out.push(
    "### 10 MiB download (wrk -c4) and memory",
    "",
    `| target | MB/s | × direct | × bare | RSS under load MiB | RSS idle MiB | RSS with ${IDLE_CONNECTIONS} idle keep-alive MiB |`,
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...rows.map(([name, s]) =>
      `| ${name} | ${fixed(s.downloadMBps)} | ${ratio(s.downloadMBps, direct.downloadMBps)} | ` +
      `${ratio(s.downloadMBps, bare.downloadMBps)} | ${fixed(s.rssLoadMiB, 1)} | ` +
      `${fixed(s.idle?.beforeMiB ?? NaN, 1)} | ${fixed(s.idle?.afterMiB ?? NaN, 1)} |`
    ),
    "",
    "### WebSocket echo, 4 clients × 32 messages in flight, 64 B",
    "",
    "| path | messages/s | × direct |",
    "| --- | ---: | ---: |",
    `| direct | ${fixed(ws.direct)} | 1.00× |`,
    `| through the proxy | ${fixed(ws.proxy)} | ${ratio(ws.proxy, ws.direct)} |`,
    "",
  );
  return out.join("\n");
}

function goals(proxy: Summary, bare: Summary, direct: Summary): string {
  const line = (goal: string, value: number, bound: number, higher: boolean) =>
    `| ${goal} | ${value.toFixed(2)}× | ${
      (higher ? value >= bound : value <= bound) ? "met" : "missed"
    } |`;
  return [
    "### Issue 7 goals (proxy)",
    "",
    "| goal | figure | |",
    "| --- | ---: | --- |",
    line("req/s ≥ 0.95× bare forwarder, c50", proxy.c50.rps / bare.c50.rps, 0.95, true),
    line("req/s ≥ 0.95× bare forwarder, c200", proxy.c200.rps / bare.c200.rps, 0.95, true),
    line("p99 ≤ 1.1× bare forwarder, c50", proxy.c50.p99Ms / bare.c50.p99Ms, 1.1, false),
    line("p99 ≤ 1.1× bare forwarder, c200", proxy.c200.p99Ms / bare.c200.p99Ms, 1.1, false),
    line("download ≥ 0.9× direct", proxy.downloadMBps / direct.downloadMBps, 0.9, true),
    line("RSS under load ≤ 1× bare forwarder", proxy.rssLoadMiB / bare.rssLoadMiB, 1, false),
    "",
  ].join("\n");
}

async function main(): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "nodetool-bench-" });
  const ports = {
    upstream: freePort(),
    echo: freePort(),
    proxy: freePort(),
    bare: freePort(),
    nginx: freePort(),
    caddy: freePort(),
  };
  try {
    await using upstream = await startUpstream(dir, ports.upstream);
    await using _echo = startDeno("ws echo", "./ws_echo.ts", String(ports.echo));
    await waitForPort(_echo, ports.echo);
    const proxy = await startProxy(dir, ports.proxy, TOKEN, [
      { name: "upstream", path: "/", port: ports.upstream },
      { name: "echo", path: "/ws", port: ports.echo },
    ]);
    await using _proxy = proxy.child;
    await using bare = startDeno(
      "bare forwarder",
      "./bare_forwarder.ts",
      String(ports.bare),
      `http://127.0.0.1:${ports.upstream}`,
    );
    await waitForPort(bare, ports.bare);
    await using nginx = await startNginxProxy(dir, ports.nginx, ports.upstream);
    await using caddy = await startCaddy(dir, ports.caddy, ports.upstream);
    const targets: Target[] = [
      { name: "direct", port: ports.upstream, pid: upstream.pid },
      { name: "nodetool proxy", port: ports.proxy, pid: proxy.child.pid },
      { name: "bare Deno fetch forwarder", port: ports.bare, pid: bare.pid },
      { name: "nginx proxy", port: ports.nginx, pid: nginx.pid },
      { name: "caddy proxy", port: ports.caddy, pid: caddy.pid },
    ];
    for (const target of targets) await check(target);
    const { figures, ws } = await measure(targets, { direct: ports.echo, proxy: ports.proxy });
    const rows = targets.map((t) => [t.name, summarize(figures.get(t.name)!)] as [string, Summary]);
    const wsMedian = { direct: median(ws.direct), proxy: median(ws.proxy) };
    const date = new Date().toISOString();
    const host = await machine();
    const byName = Object.fromEntries(rows);
    const header = `## Benchmark ${date.slice(0, 10)} — ${host}, Deno ${Deno.version.deno}, ` +
      `proxy ${VERSION}; wrk ${SECONDS} s × ${ROUNDS} interleaved rounds, medians`;
    const report = [
      header,
      "",
      tables(rows, wsMedian),
      goals(byName["nodetool proxy"], byName["bare Deno fetch forwarder"], byName["direct"]),
    ].join("\n");
    console.log(report);
    await Deno.mkdir(here("./results"), { recursive: true });
    await Deno.writeTextFile(here("./results/latest.md"), report + "\n");
    await Deno.writeTextFile(
      here("./results/latest.json"),
      JSON.stringify(
        {
          date,
          machine: host,
          deno: Deno.version.deno,
          proxy: VERSION,
          seconds: SECONDS,
          rounds: ROUNDS,
          proxyFlags: proxy.flags,
          sizes: { small: SMALL_BYTES, large: LARGE_BYTES },
          summary: byName,
          websocket: { medians: wsMedian, rounds: ws },
          raw: Object.fromEntries(figures),
        },
        null,
        2,
      ) + "\n",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

await main();
