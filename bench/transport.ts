/**
 * The upstream client on its own: `fetch` against the pooled HTTP/1.1 transport
 * (`src/proxy/transport/`), each in a bare forwarder, next to the proxy and direct, on the
 * same nginx upstream (1 KiB at `/1k`). wrk at 50 and 200 connections in interleaved rounds
 * (medians), then a 200 MB streamed upload through each forwarder to a counting sink: time
 * and peak RSS growth of the forwarding process. `--before=DIR` adds the proxy of another
 * checkout (e.g. the last `fetch`-based commit, unpacked with `git archive`).
 *
 * Run: deno run --allow-run=nginx,wrk,deno,ps --allow-net=127.0.0.1 --allow-read=.,/tmp
 *   --allow-write=/tmp --allow-env bench/transport.ts [--seconds=5] [--rounds=3]
 *   [--upload-mb=200] [--before=DIR]
 *
 * @module
 */

import { join } from "node:path";
import { freePort, rssMiB, spawn, type Spawned, waitForPort } from "./processes.ts";
import { startProxy } from "./proxy.ts";
import { startUpstream } from "./references.ts";
import { fixed, median, ratio } from "./stats.ts";
import { runWrk, type WrkResult } from "./wrk.ts";

const args = new Map(Deno.args.map((a) => a.replace(/^--/, "").split("=") as [string, string]));
const SECONDS = Number(args.get("seconds") ?? 5);
const ROUNDS = Number(args.get("rounds") ?? 3);
const UPLOAD_BYTES = Number(args.get("upload-mb") ?? 200) * 1024 * 1024;
const BEFORE = args.get("before");
const TOKEN = crypto.randomUUID().replaceAll("-", "");
const AUTH = { authorization: `Bearer ${TOKEN}` };
const here = (path: string) => new URL(path, import.meta.url).pathname;

/** A forwarding target: where wrk goes, where uploads go, and whose RSS counts. */
interface Target {
  readonly name: string;
  /** Port for the 1 KiB load (the path is `/1k`). */
  readonly port: number;
  /** URL uploads are posted to. */
  readonly upload: string;
  /** The process forwarding uploads. */
  readonly uploadPid: number;
}

function forwarder(port: number, upstream: number, mode: string): Spawned {
  return spawn(`${mode} forwarder`, "deno", [
    "run",
    "--allow-net=127.0.0.1",
    here("./bare_forwarder.ts"),
    String(port),
    `http://127.0.0.1:${upstream}`,
    mode,
  ]);
}

/** A body of `size` zero bytes, made as the reader pulls. */
function generated(size: number): ReadableStream<Uint8Array> {
  let left = size;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (left <= 0) return controller.close();
      const chunk = new Uint8Array(Math.min(64 * 1024, left));
      left -= chunk.length;
      controller.enqueue(chunk);
    },
  }, { highWaterMark: 0 });
}

/** Posts `size` bytes to `url`; returns seconds taken and the peak RSS growth of `pid`. */
async function upload(url: string, pid: number, size: number) {
  const before = await rssMiB(pid);
  let peak = before;
  let done = false;
  const started = performance.now();
  const sending = (async () => {
    const response = await fetch(url, {
      method: "POST",
      headers: AUTH,
      body: generated(size),
    });
    const text = await response.text();
    if (Number(text) !== size) throw new Error(`${url} answered ${response.status} ${text}`);
    return (performance.now() - started) / 1000;
  })().finally(() => done = true);
  while (!done) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    peak = Math.max(peak, await rssMiB(pid));
  }
  return { seconds: await sending, growthMiB: Math.max(peak, await rssMiB(pid)) - before };
}

async function main(): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "nodetool-transport-bench-" });
  const port = () => freePort();
  try {
    const upstreamPort = port();
    await using _upstream = await startUpstream(dir, upstreamPort);
    const sinkPort = port();
    await using sink = spawn("sink", "deno", [
      "run",
      "--allow-net=127.0.0.1",
      here("./upload_sink.ts"),
      String(sinkPort),
    ]);
    await waitForPort(sink, sinkPort);
    const routes = [
      { name: "upstream", path: "/", port: upstreamPort },
      { name: "sink", path: "/sink", port: sinkPort },
    ];
    const stack = new AsyncDisposableStack();
    await using _stack = stack;
    const targets: Target[] = [{
      name: "direct",
      port: upstreamPort,
      upload: `http://127.0.0.1:${sinkPort}/`,
      uploadPid: sink.pid,
    }];
    for (const mode of ["fetch", "pool"]) {
      const load = port();
      const up = port();
      const a = stack.use(forwarder(load, upstreamPort, mode));
      const b = stack.use(forwarder(up, sinkPort, mode));
      await waitForPort(a, load);
      await waitForPort(b, up);
      targets.push({
        name: `bare ${mode} forwarder`,
        port: load,
        upload: `http://127.0.0.1:${up}/`,
        uploadPid: b.pid,
      });
    }
    const proxies: [string, string | undefined][] = [["nodetool proxy", undefined]];
    if (BEFORE !== undefined) proxies.push(["nodetool proxy before", join(BEFORE, "main.ts")]);
    for (const [name, main] of proxies) {
      const p = port();
      const proxy = await startProxy(dir, p, TOKEN, routes, main);
      stack.use(proxy.child);
      targets.push({
        name,
        port: p,
        upload: `http://127.0.0.1:${p}/sink/`,
        uploadPid: proxy.child.pid,
      });
    }
    const load = new Map(
      targets.map((t) => [t.name, { 50: [] as WrkResult[], 200: [] as WrkResult[] }]),
    );
    const uploads = new Map(
      targets.map((t) => [t.name, [] as { seconds: number; growthMiB: number }[]]),
    );
    for (const t of targets) {
      const url = `http://127.0.0.1:${t.port}/1k`;
      await runWrk({ url, connections: 50, seconds: 1, headers: AUTH }, async () => {});
    }
    for (let round = 1; round <= ROUNDS; round++) {
      for (const connections of [50, 200] as const) {
        for (const t of targets) {
          const url = `http://127.0.0.1:${t.port}/1k`;
          const { result } = await runWrk(
            { url, connections, seconds: SECONDS, headers: AUTH },
            async () => {},
          );
          load.get(t.name)![connections].push(result);
          console.error(`round ${round} c${connections} ${t.name}: ${fixed(result.rps)} req/s`);
        }
      }
      for (const t of targets) {
        const figures = await upload(t.upload, t.uploadPid, UPLOAD_BYTES);
        uploads.get(t.name)!.push(figures);
        console.error(
          `round ${round} upload ${t.name}: ${fixed(figures.seconds, 1)} s, +${
            fixed(figures.growthMiB, 1)
          } MiB`,
        );
      }
    }
    const bare = load.get("bare fetch forwarder")!;
    const direct = load.get("direct")!;
    const rows = targets.map((t) => {
      const l = load.get(t.name)!;
      const u = uploads.get(t.name)!;
      const cells = ([50, 200] as const).flatMap((c) => {
        const rps = median(l[c].map((r) => r.rps));
        return [
          fixed(rps),
          ratio(rps, median(direct[c].map((r) => r.rps))),
          ratio(rps, median(bare[c].map((r) => r.rps))),
          fixed(median(l[c].map((r) => r.p99Ms)), 2),
        ];
      });
      const upload = [
        fixed(median(u.map((x) => x.seconds)), 1),
        fixed(Math.max(...u.map((x) => x.growthMiB)), 1),
      ];
      return `| ${t.name} | ${[...cells, ...upload].join(" | ")} |`;
    });
    console.log([
      `## Upstream transport ${
        new Date().toISOString().slice(0, 10)
      } — ${navigator.hardwareConcurrency} cores, ` +
      `Deno ${Deno.version.deno}; wrk -t1 ${SECONDS} s × ${ROUNDS} interleaved rounds (medians); ` +
      `${UPLOAD_BYTES / 1024 / 1024} MB upload (median time, worst RSS growth)`,
      "",
      "| target | c50 req/s | × direct | × bare fetch | c50 p99 ms | c200 req/s | × direct | × bare fetch | c200 p99 ms | upload s | upload RSS + MiB |",
      "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
      ...rows,
      "",
    ].join("\n"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

await main();
