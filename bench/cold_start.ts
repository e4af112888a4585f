/**
 * Cold-start overhead of the proxy for a Docker service: the first response through the proxy
 * minus the container's own start → port open, each the median of 10 rounds, both on the
 * busybox httpd image with a fixed loopback port (`host_port` mode) on a user-defined bridge
 * network, rounds interleaved so load drift hits both alike. Each proxy round stops the
 * container behind the proxy's back (the runtime notices from `/events`), then times one
 * request; each direct round times `POST /containers/{id}/start` → first HTTP 200.
 *
 * Run (needs dockerd): deno run --allow-read --allow-write=/tmp,/var/run/docker.sock
 *   --allow-net=127.0.0.1,unix:/var/run/docker.sock --allow-env --allow-run=tar,/bin/busybox,deno
 *   bench/cold_start.ts [--direct-only]
 *
 * @module
 */

import { join } from "node:path";
import { DockerClient } from "../src/runtimes/docker/client.ts";
import { BUSYBOX_IMAGE, dockerHost, ensureBusyboxImage } from "../tests/helpers/docker.ts";

const ROUNDS = 10;
const docker = new DockerClient(dockerHost());
const suffix = crypto.randomUUID().slice(0, 8);

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

/** One measured path: a round returns milliseconds. */
interface Rig extends AsyncDisposable {
  round(): Promise<number>;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Polls until `url` answers 200; returns the time it did. */
async function firstOk(url: string, init?: RequestInit): Promise<number> {
  for (;;) {
    try {
      const res = await fetch(url, init);
      await res.body?.cancel();
      if (res.ok) return performance.now();
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 2));
  }
}

async function stopContainer(name: string): Promise<void> {
  await docker.json("POST", `/containers/${name}/stop`, { query: { t: 0 } });
}

async function removeContainer(name: string): Promise<void> {
  await docker.json("DELETE", `/containers/${name}`, { query: { force: true } }).catch(() => {});
}

/**
 * Container start → port open, measured through the Engine API alone, for a container shaped
 * like the runtime's (a user-defined bridge network, a loopback port binding).
 */
async function direct(): Promise<Rig> {
  const name = `nt-bench-direct-${suffix}`;
  const network = `nt-bench-direct-net-${suffix}`;
  const port = freePort();
  await docker.json("POST", "/networks/create", { body: { Name: network, Driver: "bridge" } });
  await docker.json("POST", "/containers/create", {
    query: { name },
    body: {
      Image: BUSYBOX_IMAGE,
      ExposedPorts: { "8000/tcp": {} },
      HostConfig: {
        NetworkMode: network,
        PortBindings: { "8000/tcp": [{ HostIp: "127.0.0.1", HostPort: `${port}` }] },
      },
    },
  });
  return {
    async round() {
      const started = performance.now();
      await docker.json("POST", `/containers/${name}/start`);
      const ms = await firstOk(`http://127.0.0.1:${port}/`) - started;
      await stopContainer(name);
      return ms;
    },
    async [Symbol.asyncDispose]() {
      await removeContainer(name);
      await docker.json("DELETE", `/networks/${network}`).catch(() => {});
    },
  };
}

/** First response through a real proxy process, with the container stopped before each. */
async function throughProxy(): Promise<Rig> {
  const dir = await Deno.makeTempDir({ prefix: "nodetool-bench-" });
  const name = `nt-bench-proxy-${suffix}`;
  const network = `nt-bench-net-${suffix}`;
  const config = join(dir, "proxy.yaml");
  await Deno.writeTextFile(
    config,
    [
      "global:",
      "  bearer_token: bench-token",
      "  connect_mode: host_port",
      `  docker_network: ${network}`,
      `  docker_host: ${dockerHost()}`,
      "  idle_timeout: 3600",
      "services:",
      `  - name: ${name}`,
      "    path: /bench",
      `    image: ${BUSYBOX_IMAGE}`,
      `    host_port: ${freePort()}`,
      "    public: true",
    ].join("\n") + "\n",
  );
  const socket = dockerHost().replace("unix://", "");
  const proxy = new Deno.Command("deno", {
    args: [
      "run",
      `--allow-read=${dir},${socket}`,
      `--allow-write=${socket}`,
      `--allow-net=127.0.0.1,unix:${socket}`,
      "--allow-env",
      join(import.meta.dirname!, "../main.ts"),
      "proxy",
      "--config",
      config,
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--no-tls",
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const cleanup = async () => {
    proxy.kill("SIGTERM");
    await proxy.status;
    await removeContainer(name);
    await docker.json("DELETE", `/networks/${network}`).catch(() => {});
    await Deno.remove(dir, { recursive: true });
  };
  let target: string;
  try {
    target = new URL("/bench/", await listeningUrl(proxy.stderr)).href;
    await firstOk(target); // creates the container once
  } catch (error) {
    await cleanup();
    throw error;
  }
  return {
    async round() {
      await stopContainer(name);
      await new Promise((r) => setTimeout(r, 300)); // the proxy sees the `die` event
      const started = performance.now();
      const res = await fetch(target);
      await res.body?.cancel();
      if (!res.ok) throw new Error(`proxy answered ${res.status}`);
      return performance.now() - started;
    },
    [Symbol.asyncDispose]: cleanup,
  };
}

/** Reads the proxy's JSON log lines until `listening`; the rest of stderr is drained. */
async function listeningUrl(stderr: ReadableStream<Uint8Array>): Promise<string> {
  const lines = stderr.pipeThrough(new TextDecoderStream()).getReader();
  let pending = "";
  for (;;) {
    const { value, done } = await lines.read();
    if (done) throw new Error(`the proxy exited before listening:\n${pending}`);
    pending += value;
    const match = /"msg":"listening".*?"url":"([^"]+)"/.exec(pending);
    if (match) {
      (async () => {
        while (!(await lines.read()).done);
      })();
      return match[1];
    }
  }
}

if (import.meta.main) {
  await ensureBusyboxImage();
  const withProxy = !Deno.args.includes("--direct-only");
  await using directRig = await direct();
  await using proxyRig = withProxy ? await throughProxy() : null;
  const directTimes: number[] = [];
  const proxyTimes: number[] = [];
  for (let i = 0; i < ROUNDS; i++) { // interleaved, so machine load drifts hit both alike
    directTimes.push(await directRig.round());
    if (proxyRig) proxyTimes.push(await proxyRig.round());
  }
  const report: Record<string, unknown> = {
    rounds: ROUNDS,
    direct_start_to_port_open_ms: Math.round(median(directTimes)),
  };
  if (proxyRig) {
    report.proxy_first_response_ms = Math.round(median(proxyTimes));
    report.overhead_ms = Math.round(median(proxyTimes) - median(directTimes));
  }
  await Deno.stdout.write(new TextEncoder().encode(JSON.stringify(report) + "\n"));
}
