/**
 * Docker services through the real proxy process (`main.ts proxy`, launched with exactly the
 * permission flags `permissionFlags(config)` derives), against a real dockerd: cold start,
 * idle stop, containers killed or removed behind the proxy's back, adoption after a proxy
 * restart, recreation on a config change, failed starts, limits and volumes, SSE and
 * WebSocket, and a dockerd restart under the proxy. Each test removes the containers,
 * networks and images it made.
 *
 * The last test stops the shared dockerd (`/var/run/docker.sock`) and starts it again the way
 * `.ci/run` does (`dockerd --log-level warn`, then poll `/_ping`); it always leaves a dockerd
 * running. It is last in this file so it cannot disturb the others here.
 *
 * Run:
 *   deno test --allow-net=127.0.0.1,localhost,unix:/var/run/docker.sock
 *   --allow-read=.,/tmp,/var/run/docker.sock,/var/run/docker.pid,/bin/busybox
 *   --allow-write=/tmp,/var/run/docker.sock --allow-run=deno,tar,ldd,kill,dockerd,/bin/busybox
 *   --allow-env tests/docker_proxy_test.ts
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import type { ContainerInspect } from "../src/runtimes/docker/spec.ts";
import {
  buildDenoApp,
  BUSYBOX_IMAGE,
  dockerAvailable,
  dockerHost,
  DockerScope,
  ensureBusyboxImage,
  testDocker,
} from "./helpers/docker.ts";
import { type ProxyProcess, sleep, startProxy } from "./helpers/proxy_process.ts";
import { assertServiceAvailable, skipUnless } from "./helpers/services.ts";

const dockerOk = await dockerAvailable();

/** A test with a fresh {@link DockerScope}; skipped without dockerd (fails in CI). */
function dockerTest(name: string, fn: (scope: DockerScope) => Promise<void>): void {
  Deno.test({ name, ignore: skipUnless(dockerOk) }, async () => {
    assertServiceAvailable("dockerd", dockerOk);
    await ensureBusyboxImage();
    await using scope = new DockerScope();
    await fn(scope);
  });
}

/** `global:` for a proxy whose Docker services publish on loopback in the scope's network. */
function dockerGlobal(scope: DockerScope): Record<string, unknown> {
  return {
    connect_mode: "host_port",
    docker_network: scope.network(),
    docker_host: dockerHost(),
    idle_timeout: 300,
    shutdown_grace: 1, // busybox httpd as PID 1 ignores SIGTERM: killed after 1 s
  };
}

/**
 * A busybox httpd image that ends on SIGTERM like a well-behaved server (busybox httpd as
 * PID 1 would ignore it and only die at the stop grace's SIGKILL).
 */
function httpdImage(scope: DockerScope): Promise<string> {
  return ensureBusyboxImage(scope.image("httpd"), [
    "/bin/sh",
    "-c",
    "trap 'exit 0' TERM; httpd -f -p 8000 -h /www & wait",
  ]);
}

/** A fetch whose body is always read: status, text and headers. */
async function get(
  url: string,
  init?: RequestInit,
): Promise<{ status: number; text: string; headers: Headers }> {
  const response = await fetch(url, init);
  return { status: response.status, text: await response.text(), headers: response.headers };
}

async function inspect(scope: DockerScope, name: string) {
  return await scope.docker.json<
    ContainerInspect & {
      State: { Status: string };
      Config: { Env: string[] };
      HostConfig: { Memory: number; NanoCpus: number };
      Mounts: { Source: string; Destination: string; RW: boolean }[];
    }
  >("GET", `/containers/${name}/json`);
}

/** Polls until `check` returns true; returns the milliseconds it took. */
async function until(what: string, check: () => Promise<boolean>, timeoutMs: number) {
  const began = performance.now();
  while (!(await check())) {
    if (performance.now() - began > timeoutMs) throw new Error(`timed out: ${what}`);
    await sleep(50);
  }
  return performance.now() - began;
}

/**
 * Waits until `/proxy/status` shows the service stopped: the proxy learnt from Docker's
 * events that its container is gone. (A request sent before that, in the millisecond or so
 * the event takes, is forwarded to the dead port and gets a 502.)
 */
async function noticed(proxy: ProxyProcess, service: string): Promise<void> {
  await until("the proxy notices the container is gone", async () => {
    const status = await get(`${proxy.url}proxy/status`, { headers: proxy.auth });
    const { services } = JSON.parse(status.text) as { services: { name: string; state: string }[] };
    return services.find((s) => s.name === service)?.state === "stopped";
  }, 5000);
}

/** The Deno app the SSE, WebSocket and volume tests run in a container. */
const DENO_APP = `
const encoder = new TextEncoder();
Deno.serve({ hostname: "0.0.0.0", port: 8000 }, async (request) => {
  const url = new URL(request.url);
  const path = url.searchParams.get("path") ?? "";
  try {
    switch (url.pathname) {
      case "/ws": {
        const { socket, response } = Deno.upgradeWebSocket(request);
        socket.onmessage = (event) => socket.send("echo " + event.data);
        return response;
      }
      case "/sse": {
        const body = new ReadableStream({
          async start(controller) {
            controller.enqueue(encoder.encode("data: first\\n\\n"));
            await new Promise((resolve) => setTimeout(resolve, 3000));
            controller.enqueue(encoder.encode("data: last\\n\\n"));
            controller.close();
          },
        });
        return new Response(body, { headers: { "content-type": "text/event-stream" } });
      }
      case "/write":
        await Deno.writeTextFile(path, "written in the container\\n");
        return new Response("written");
      case "/read":
        return new Response(await Deno.readTextFile(path));
      default:
        return new Response("deno app " + Deno.env.get("GREETING"));
    }
  } catch (error) {
    return new Response(String(error), { status: 500 });
  }
});
`;

/** The process-service fixture, run by deno. */
const HTTP_APP = new URL("./fixtures/http_app.ts", import.meta.url).pathname;

dockerTest(
  "cold start: 50 concurrent first requests share one new container, one network",
  async (scope) => {
    const name = scope.service("cold");
    const other = scope.service("other");
    await using proxy = await startProxy({
      global: dockerGlobal(scope),
      services: [
        { name, path: "/cold", image: BUSYBOX_IMAGE },
        { name: other, path: "/other", image: BUSYBOX_IMAGE },
      ],
    });
    const [responses, otherResponse] = await Promise.all([
      Promise.all(
        Array.from({ length: 50 }, () => get(`${proxy.url}cold/`, { headers: proxy.auth })),
      ),
      get(`${proxy.url}other/`, { headers: proxy.auth }), // a second cold start meanwhile
    ]);
    assert.deepEqual(responses.map((r) => r.status), Array(50).fill(200));
    assert.ok(responses.every((r) => r.text === "hello from busybox\n"));
    assert.ok(responses.some((r) => r.headers.get("server-timing")?.startsWith("cold-start")));
    assert.equal(otherResponse.status, 200);
    const containers = await scope.containers();
    assert.equal(containers.filter((c) => c.Names[0] === `/${name}`).length, 1);
    assert.ok(containers.every((c) => c.State === "running"));
    assert.equal(proxy.logsOf("created container").length, 2);
    const networks = await scope.docker.json<{ Name: string }[]>("GET", "/networks", {
      query: { filters: { name: [scope.network()] } },
    });
    assert.equal(networks.filter((n) => n.Name === scope.network()).length, 1);
  },
);

dockerTest(
  "idle stop within idle_timeout + 2 s keeps the container; next request restarts it",
  async (scope) => {
    const name = scope.service("idle");
    await using proxy = await startProxy({
      global: dockerGlobal(scope),
      services: [{ name, path: "/idle", image: await httpdImage(scope), idle_timeout: 1 }],
    });
    assert.equal((await get(`${proxy.url}idle/`, { headers: proxy.auth })).status, 200);
    const { Id } = await inspect(scope, name);
    const ms = await until(
      "idle stop",
      async () => (await inspect(scope, name)).State.Status === "exited",
      8000,
    );
    assert.ok(ms <= 1000 + 2000, `stopped after ${Math.round(ms)} ms`);
    const again = await get(`${proxy.url}idle/`, { headers: proxy.auth });
    assert.equal(again.status, 200);
    assert.equal(again.text, "hello from busybox\n");
    const after = await inspect(scope, name);
    assert.equal(after.Id, Id, "restarted, not recreated");
    assert.equal(after.State.Status, "running");
  },
);

dockerTest(
  "docker kill and docker rm -f behind the proxy's back are noticed; the next request succeeds",
  async (scope) => {
    const name = scope.service("gone");
    await using proxy = await startProxy({
      global: dockerGlobal(scope),
      services: [{ name, path: "/gone", image: BUSYBOX_IMAGE }],
    });
    const url = `${proxy.url}gone/`;
    assert.equal((await get(url, { headers: proxy.auth })).status, 200);
    await scope.docker.json("POST", `/containers/${name}/kill`);
    await noticed(proxy, name);
    const afterKill = await get(url, { headers: proxy.auth });
    assert.equal(afterKill.status, 200, afterKill.text);
    await scope.docker.json("DELETE", `/containers/${name}`, { query: { force: true } });
    await noticed(proxy, name);
    const afterRemove = await get(url, { headers: proxy.auth });
    assert.equal(afterRemove.status, 200, afterRemove.text);
    // Noticed on the next request too, before the event can arrive: the refused connection
    // makes the proxy re-check the container and start it again.
    for (let round = 0; round < 3; round++) {
      await scope.docker.json("POST", `/containers/${name}/kill`);
      const immediately = await get(url, { headers: proxy.auth });
      assert.equal(immediately.status, 200, immediately.text);
    }
    assert.equal((await scope.containers()).length, 1);
  },
);

dockerTest(
  "a restarted proxy adopts the running container and reaps it when idle",
  async (scope) => {
    const name = scope.service("adopt");
    const image = await httpdImage(scope);
    const services = [{ name, path: "/adopt", image, idle_timeout: 2 }];
    const first = await startProxy({ global: dockerGlobal(scope), services });
    try {
      assert.equal((await get(`${first.url}adopt/`, { headers: first.auth })).status, 200);
    } finally {
      await first.stop("SIGKILL"); // a crash: nothing stops the container
      await first[Symbol.asyncDispose]();
    }
    const { Id } = await inspect(scope, name);
    await using second = await startProxy({ global: dockerGlobal(scope), services });
    assert.equal(second.logsOf("adopted running container").length, 1);
    const response = await get(`${second.url}adopt/`, { headers: second.auth });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("server-timing"), null, "no cold start");
    assert.equal(second.logsOf("created container").length, 0);
    const containers = await scope.containers();
    assert.deepEqual(containers.map((c) => c.Id), [Id]);
    const ms = await until(
      "idle stop of the adopted container",
      async () => (await inspect(scope, name)).State.Status === "exited",
      8000,
    );
    assert.ok(ms <= 2000 + 2000, `stopped after ${Math.round(ms)} ms`);
  },
);

dockerTest("a changed environment value recreates the container", async (scope) => {
  const name = scope.service("env");
  const image = await httpdImage(scope);
  const service = (value: string) => ({
    name,
    path: "/env",
    image,
    environment: { GREETING: value },
  });
  let before: string;
  {
    await using proxy = await startProxy({ global: dockerGlobal(scope), services: [service("a")] });
    assert.equal((await get(`${proxy.url}env/`, { headers: proxy.auth })).status, 200);
    before = (await inspect(scope, name)).Id;
  }
  await using proxy = await startProxy({ global: dockerGlobal(scope), services: [service("b")] });
  assert.equal((await get(`${proxy.url}env/`, { headers: proxy.auth })).status, 200);
  const after = await inspect(scope, name);
  assert.notEqual(after.Id, before);
  assert.ok(after.Config.Env.includes("GREETING=b"));
  assert.equal(proxy.logsOf("recreating container: config changed").length, 1);
  assert.equal((await scope.containers()).length, 1);
});

dockerTest(
  "failed starts: fast 503s with the log tail or the image name; other routes work",
  async (scope) => {
    const crash = scope.service("crash");
    const missing = scope.service("missing");
    const missingImage = scope.image("no-such-image");
    const crashImage = await ensureBusyboxImage(scope.image("crash"), [
      "/bin/sh",
      "-c",
      "echo starting up; echo 'fatal: no database at db:5432' >&2; exit 3",
    ]);
    await using proxy = await startProxy({
      global: dockerGlobal(scope),
      services: [
        { name: crash, path: "/crash", image: crashImage },
        { name: missing, path: "/missing", image: missingImage },
        {
          name: scope.service("proc"),
          path: "/proc",
          command: ["deno", "run", "--allow-net=127.0.0.1", "--allow-env=PORT,HOST", HTTP_APP],
        },
      ],
    });
    let began = performance.now();
    const crashed = await get(`${proxy.url}crash/`, { headers: proxy.auth });
    const crashMs = performance.now() - began;
    assert.equal(crashed.status, 503);
    assert.match(crashed.text, /code 3/);
    assert.match(crashed.text, /fatal: no database at db:5432/);
    assert.ok(crashMs < 5000, `503 after ${Math.round(crashMs)} ms`);

    began = performance.now();
    const [absent, process] = await Promise.all([
      get(`${proxy.url}missing/`, { headers: proxy.auth }),
      get(`${proxy.url}proc/`, { headers: proxy.auth }),
    ]);
    assert.equal(absent.status, 503);
    assert.ok(absent.text.includes(missingImage), absent.text);
    assert.equal(process.status, 200);
    assert.equal(process.text, "ok");
    assert.equal((await get(`${proxy.url}healthz`)).status, 200);
  },
);

dockerTest("mem_limit and cpus in inspect; rw and ro volumes behave", async (scope) => {
  const name = scope.service("vol");
  const image = await buildDenoApp(scope.image("deno-app"), DENO_APP);
  const dir = await Deno.makeTempDir({ prefix: "nodetool-volumes-" });
  try {
    await Deno.mkdir(join(dir, "ro"));
    await Deno.mkdir(join(dir, "rw"));
    await Deno.writeTextFile(join(dir, "ro/config.txt"), "read-only content\n");
    await using proxy = await startProxy({
      global: dockerGlobal(scope),
      services: [{
        name,
        path: "/vol",
        image,
        mem_limit: "256m",
        cpus: 0.5,
        volumes: {
          [join(dir, "ro")]: { bind: "/config", mode: "ro" },
          [join(dir, "rw")]: { bind: "/data", mode: "rw" },
        },
      }],
    });
    const call = (path: string) => get(`${proxy.url}vol${path}`, { headers: proxy.auth });
    const read = await call("/read?path=/config/config.txt");
    assert.equal(read.status, 200, read.text);
    assert.equal(read.text, "read-only content\n");
    const write = await call("/write?path=/data/out.txt");
    assert.equal(write.status, 200, write.text);
    assert.equal(await Deno.readTextFile(join(dir, "rw/out.txt")), "written in the container\n");
    const denied = await call("/write?path=/config/out.txt");
    assert.equal(denied.status, 500);
    assert.match(denied.text, /read-only file system/i);

    const info = await inspect(scope, name);
    assert.equal(info.HostConfig.Memory, 256 * 1024 * 1024);
    assert.equal(info.HostConfig.NanoCpus, 500_000_000);
    const mounts = Object.fromEntries(info.Mounts.map((m) => [m.Destination, m.RW]));
    assert.deepEqual(mounts, { "/config": false, "/data": true });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

dockerTest("SSE and WebSocket services in a container work through the proxy", async (scope) => {
  const name = scope.service("stream");
  const image = await buildDenoApp(scope.image("deno-app"), DENO_APP);
  await using proxy = await startProxy({
    global: dockerGlobal(scope),
    services: [{ name, path: "/stream", image, public: true, environment: { GREETING: "hi" } }],
  });
  const plain = await get(`${proxy.url}stream/`);
  assert.equal(plain.status, 200);
  assert.equal(plain.text, "deno app hi");

  const began = performance.now();
  const sse = await fetch(`${proxy.url}stream/sse`);
  assert.equal(sse.status, 200);
  assert.equal(sse.headers.get("content-type"), "text/event-stream");
  const reader = sse.body!.pipeThrough(new TextDecoderStream()).getReader();
  const first = await reader.read();
  const firstMs = performance.now() - began;
  await reader.cancel();
  assert.equal(first.value, "data: first\n\n");
  assert.ok(firstMs < 2000, `first event after ${Math.round(firstMs)} ms (stream ends at 3 s)`);

  const ws = new WebSocket(`${proxy.url.replace(/^http/, "ws")}stream/ws`);
  const opened = Promise.withResolvers<void>();
  const closed = Promise.withResolvers<void>();
  const message = Promise.withResolvers<string>();
  ws.onopen = () => opened.resolve();
  ws.onerror = () => opened.reject(new Error("WebSocket failed"));
  ws.onmessage = (event) => message.resolve(String(event.data));
  ws.onclose = () => closed.resolve();
  try {
    await opened.promise;
    ws.send("ping");
    assert.equal(await message.promise, "echo ping");
  } finally {
    ws.close();
    await closed.promise;
  }
});

// Last: stops the shared dockerd and starts it again.
dockerTest(
  "dockerd stopped: 503 for Docker routes, process routes served; back: recovered",
  async (scope) => {
    const name = scope.service("outage");
    const processName = scope.service("outage-proc");
    await using proxy = await startProxy({
      global: dockerGlobal(scope),
      services: [
        { name, path: "/docker", image: await httpdImage(scope) },
        {
          name: processName,
          path: "/proc",
          command: ["deno", "run", "--allow-net=127.0.0.1", "--allow-env=PORT,HOST", HTTP_APP],
        },
      ],
    });
    const call = (path: string) => get(`${proxy.url}${path}`, { headers: proxy.auth });
    assert.equal((await call("docker/")).status, 200);
    await using dockerd = await stopDockerd();
    const began = performance.now();
    const down = await call("docker/");
    assert.equal(down.status, 503, down.text);
    assert.match(down.text, /docker/i);
    assert.ok(performance.now() - began < 5000);
    const process = await call("proc/");
    assert.equal(process.status, 200);
    assert.equal(process.text, "ok");
    assert.equal((await call("healthz")).status, 200);

    await dockerd.start();
    const back = await call("docker/");
    assert.equal(back.status, 200, back.text);
    assert.equal(back.text, "hello from busybox\n");
    assert.ok(proxy.logsOf("docker is unreachable, retrying").length >= 1);
  },
);

/** Path of the shared dockerd's pid file (its default `--pidfile`). */
const DOCKERD_PIDFILE = "/var/run/docker.pid";

/** The stopped shared dockerd: `start()` brings it back; disposal makes sure it is running. */
interface StoppedDockerd extends AsyncDisposable {
  start(): Promise<void>;
}

/**
 * Stops the shared dockerd (SIGTERM to the pid in its pid file, then waits until the pid file
 * is gone and the socket stops answering). Starting it again runs `dockerd --log-level warn`
 * detached, as `.ci/run` does, and polls `/_ping`.
 */
async function stopDockerd(): Promise<StoppedDockerd> {
  const pid = (await Deno.readTextFile(DOCKERD_PIDFILE)).trim();
  const kill = await new Deno.Command("kill", { args: ["-TERM", pid] }).output();
  if (!kill.success) throw new Error(`kill -TERM ${pid} failed`);
  const docker = testDocker();
  const answers = () => docker.ping(AbortSignal.timeout(1000)).then(() => true, () => false);
  const gone = async () => {
    try {
      await Deno.stat(DOCKERD_PIDFILE);
      return false;
    } catch {
      return !(await answers());
    }
  };
  const start = async () => {
    if (await answers()) return;
    const child = new Deno.Command("dockerd", {
      args: ["--log-level", "warn"],
      stdin: "null",
      stdout: "null",
      stderr: "null",
      // Its own session: the daemon must outlive this test process, as the CI's first one does.
      detached: true,
    }).spawn();
    child.unref();
    await until("dockerd answers /_ping", answers, 20_000);
  };
  try {
    await until("dockerd stopped", gone, 30_000);
  } catch (error) {
    await start();
    throw error;
  }
  return { start, [Symbol.asyncDispose]: start };
}
