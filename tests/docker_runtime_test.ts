/**
 * DockerRuntime against a real dockerd, through the Runtime API.
 *
 * Run (verified with exactly these scoped flags):
 *   deno test --allow-net=127.0.0.1,unix:/var/run/docker.sock,unix:/tmp/nodetool-no-such-docker.sock
 *   --allow-read=.,/tmp,/var/run/docker.sock,/bin/busybox --allow-write=/tmp,/var/run/docker.sock
 *   --allow-run=tar,/bin/busybox --allow-env tests/docker_runtime_test.ts
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { type ServiceConfig, ServiceSchema } from "../src/config/schema.ts";
import type { Workload } from "../src/services/runtime.ts";
import { DockerRuntime, type DockerRuntimeConfig } from "../src/runtimes/docker/runtime.ts";
import type { ContainerInspect } from "../src/runtimes/docker/spec.ts";
import {
  buildImage,
  BUSYBOX_IMAGE,
  dockerAvailable,
  dockerHost,
  DockerScope,
  ensureBusyboxImage,
} from "./helpers/docker.ts";
import { assertServiceAvailable, skipUnless } from "./helpers/services.ts";

const dockerOk = await dockerAvailable();

function dockerTest(name: string, fn: () => Promise<void>): void {
  Deno.test({ name, ignore: skipUnless(dockerOk) }, async () => {
    assertServiceAvailable("dockerd", dockerOk);
    await ensureBusyboxImage();
    await fn();
  });
}

function service(name: string, fields: Record<string, unknown> = {}): ServiceConfig {
  return {
    ...ServiceSchema.parse({ name, path: `/${name}`, image: BUSYBOX_IMAGE, ...fields }),
    idle_timeout: 60,
    response_timeout: 60,
    runtime: "docker",
  };
}

function runtimeConfig(
  scope: DockerScope,
  overrides: Partial<DockerRuntimeConfig["global"]> = {},
  source = "/tmp/proxy.yaml",
): DockerRuntimeConfig {
  return {
    source,
    global: {
      docker_host: dockerHost(),
      docker_network: scope.network(),
      connect_mode: "host_port",
      ...overrides,
    },
  };
}

/** Polls `url` until it answers 200 (the container's port opens shortly after start). */
async function get(url: URL, timeoutMs = 10_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(url);
      const text = await res.text();
      if (res.ok) return text;
    } catch (error) {
      if (Date.now() > deadline) throw error;
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer 200 in time`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function inspect(scope: DockerScope, id: string): Promise<
  ContainerInspect & {
    HostConfig: { Memory: number; NanoCpus: number; Binds: string[] };
    Config: { Env: string[] };
  }
> {
  return scope.docker.json("GET", `/containers/${id}/json`);
}

function idOf(workload: Workload): string {
  return (workload as unknown as { id: string }).id;
}

async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const never = new AbortController().signal;

dockerTest("start in host_port mode with an auto port answers 200, labelled", async () => {
  await using scope = new DockerScope();
  const runtime = new DockerRuntime(runtimeConfig(scope));
  try {
    const web = service(scope.service("web"));
    const workload = await runtime.start(web, never);
    assert.equal(workload.upstream.hostname, "127.0.0.1");
    assert.notEqual(workload.upstream.port, "");
    assert.equal(await get(workload.upstream), "hello from busybox\n");
    const info = await inspect(scope, idOf(workload));
    assert.equal(info.Config.Labels?.["com.nodetool.managed"], "true");
    assert.equal(info.Config.Labels?.["com.nodetool.service"], web.name);
    assert.match(info.Config.Labels?.["com.nodetool.config-hash"] ?? "", /^[0-9a-f]{64}$/);
    // Docker's userland proxy accepts on the published port before the container listens.
    assert.equal(await workload.ready?.(never), true, "published port: ready once HTTP answers");
    await workload.stop(1000);
    const exit = await within(workload.exited, 5000, "exit after stop");
    assert.notEqual(exit.code, null);
    assert.equal((await inspect(scope, idOf(workload))).State.Running, false, "kept, stopped");
  } finally {
    await runtime.close();
  }
});

dockerTest("a fixed host_port is published on loopback", async () => {
  await using scope = new DockerScope();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  const runtime = new DockerRuntime(runtimeConfig(scope));
  try {
    const workload = await runtime.start(
      service(scope.service("fixed"), { host_port: port }),
      never,
    );
    assert.equal(workload.upstream.href, `http://127.0.0.1:${port}/`);
    assert.equal(await get(workload.upstream), "hello from busybox\n");
    await workload.stop(0);
  } finally {
    await runtime.close();
  }
});

dockerTest(
  "a changed environment recreates the container; an unchanged one restarts it",
  async () => {
    await using scope = new DockerScope();
    const runtime = new DockerRuntime(runtimeConfig(scope));
    try {
      const name = scope.service("env");
      const first = await runtime.start(service(name, { environment: { A: "1" } }), never);
      await first.stop(0);
      await first.exited;
      const same = await runtime.start(service(name, { environment: { A: "1" } }), never);
      assert.equal(idOf(same), idOf(first), "same config: the stopped container is restarted");
      await same.stop(0);
      await same.exited;
      const changed = await runtime.start(service(name, { environment: { A: "2" } }), never);
      assert.notEqual(idOf(changed), idOf(first), "changed config: recreated");
      assert.ok((await inspect(scope, idOf(changed))).Config.Env.includes("A=2"));
      assert.equal((await scope.containers()).length, 1, "the old container is gone");
      await get(changed.upstream);
      await changed.stop(0);
    } finally {
      await runtime.close();
    }
  },
);

dockerTest("docker kill and docker rm -f behind the runtime's back settle exited", async () => {
  await using scope = new DockerScope();
  const runtime = new DockerRuntime(runtimeConfig(scope));
  try {
    const web = service(scope.service("kill"));
    const killed = await runtime.start(web, never);
    await get(killed.upstream);
    await scope.docker.json("POST", `/containers/${idOf(killed)}/kill`);
    assert.equal((await within(killed.exited, 5000, "exit after kill")).code, 137);

    const removed = await runtime.start(web, never);
    assert.equal(idOf(removed), idOf(killed), "the killed container is started again");
    await get(removed.upstream);
    await scope.docker.json("DELETE", `/containers/${idOf(removed)}`, { query: { force: true } });
    await within(removed.exited, 5000, "exit after rm -f");

    const again = await runtime.start(web, never);
    assert.notEqual(idOf(again), idOf(removed), "a removed container is created anew");
    assert.equal(await get(again.upstream), "hello from busybox\n");
    await again.stop(0);
  } finally {
    await runtime.close();
  }
});

dockerTest("a new runtime adopts running containers whose config matches", async () => {
  await using scope = new DockerScope();
  const config = runtimeConfig(scope);
  const web = service(scope.service("adopt"));
  const other = service(scope.service("stale"), { environment: { V: "old" } });
  const first = new DockerRuntime(config);
  const started = await first.start(web, never);
  await first.start(other, never);
  await first.close(); // a proxy restart: the containers keep running
  const second = new DockerRuntime(config);
  try {
    const adopted = await second.adopt([web, { ...other, environment: { V: "new" } }]);
    assert.deepEqual([...adopted.keys()], [web.name], "the stale one is not adopted");
    const workload = adopted.get(web.name)!;
    assert.equal(workload.upstream.href, started.upstream.href);
    assert.equal(await get(workload.upstream), "hello from busybox\n");
    await scope.docker.json("POST", `/containers/${web.name}/kill`);
    await within(workload.exited, 5000, "adopted container's exit");
  } finally {
    await second.close();
  }
});

dockerTest("concurrent starts from two runtimes share one container", async () => {
  await using scope = new DockerScope();
  const config = runtimeConfig(scope);
  const web = service(scope.service("race"));
  const a = new DockerRuntime(config);
  const b = new DockerRuntime(config);
  try {
    const [wa, wb] = await Promise.all([a.start(web, never), b.start(web, never)]);
    assert.equal(idOf(wa), idOf(wb));
    assert.equal((await scope.containers()).length, 1);
    await get(wa.upstream);
  } finally {
    await a.close();
    await b.close();
  }
});

dockerTest("services started together create one network, not one each", async () => {
  await using scope = new DockerScope();
  const config = runtimeConfig(scope);
  const runtime = new DockerRuntime(config);
  try {
    const services = ["n1", "n2", "n3", "n4"].map((n) => service(scope.service(n)));
    const workloads = await Promise.all(services.map((s) => runtime.start(s, never)));
    const networks = await scope.docker.json<{ Name: string }[]>("GET", "/networks", {
      query: { filters: { name: [config.global.docker_network] } },
    });
    assert.equal(networks.filter((n) => n.Name === config.global.docker_network).length, 1);
    await Promise.all(workloads.map((w) => w.stop(0)));
  } finally {
    await runtime.close();
  }
});

dockerTest("a container that exits at once settles with its exit code and log tail", async () => {
  await using scope = new DockerScope();
  const image = scope.image("crash");
  await ensureBusyboxImage(image, ["/bin/sh", "-c", "echo starting; echo boom >&2; exit 3"]);
  const runtime = new DockerRuntime(runtimeConfig(scope));
  try {
    const workload = await runtime.start(service(scope.service("crash"), { image }), never);
    const exit = await within(workload.exited, 5000, "exit");
    assert.equal(exit.code, 3);
    // stdout and stderr arrive on separate pipes: their relative order is not guaranteed.
    assert.deepEqual(workload.logTail().split("\n").sort(), ["boom", "starting"]);
  } finally {
    await runtime.close();
  }
});

dockerTest("a missing image is a clear error naming it", async () => {
  await using scope = new DockerScope();
  const runtime = new DockerRuntime(runtimeConfig(scope));
  try {
    const image = "nodetool-test/does-not-exist:1";
    await assert.rejects(
      runtime.start(service(scope.service("missing"), { image }), never),
      (error: Error) => {
        assert.match(error.message, /nodetool-test\/does-not-exist:1/);
        assert.match(error.message, /could not be pulled/);
        return true;
      },
    );
  } finally {
    await runtime.close();
  }
});

dockerTest("mem_limit and cpus are visible in inspect", async () => {
  await using scope = new DockerScope();
  const runtime = new DockerRuntime(runtimeConfig(scope));
  try {
    const workload = await runtime.start(
      service(scope.service("limits"), { mem_limit: "64m", cpus: 0.5 }),
      never,
    );
    const info = await inspect(scope, idOf(workload));
    assert.equal(info.HostConfig.Memory, 64 * 1024 * 1024);
    assert.equal(info.HostConfig.NanoCpus, 500_000_000);
    await workload.stop(0);
  } finally {
    await runtime.close();
  }
});

dockerTest("rw and ro volumes behave; relative paths resolve against the config", async () => {
  await using scope = new DockerScope();
  const root = await Deno.makeTempDir({ prefix: "nodetool-volumes-" });
  try {
    await Deno.mkdir(join(root, "rw"));
    await Deno.mkdir(join(root, "ro"));
    await Deno.writeTextFile(join(root, "ro/index.html"), "read only\n");
    const image = scope.image("volumes");
    await ensureBusyboxImage(image, [
      "/bin/sh",
      "-c",
      "echo written > /rw/out; if (echo x > /ro/out) 2>/dev/null; then echo writable > /rw/ro; " +
      "else echo denied > /rw/ro; fi; exec httpd -f -p 8000 -h /ro",
    ]);
    const runtime = new DockerRuntime(runtimeConfig(scope, {}, join(root, "proxy.yaml")));
    try {
      const workload = await runtime.start(
        service(scope.service("volumes"), {
          image,
          volumes: { "./rw": "/rw:rw", [join(root, "ro")]: { bind: "/ro", mode: "ro" } },
        }),
        never,
      );
      assert.equal(await get(workload.upstream), "read only\n");
      assert.equal(await Deno.readTextFile(join(root, "rw/out")), "written\n");
      assert.equal(await Deno.readTextFile(join(root, "rw/ro")), "denied\n");
      await assert.rejects(Deno.stat(join(root, "ro/out")), Deno.errors.NotFound);
      await workload.stop(0);
    } finally {
      await runtime.close();
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

dockerTest("an image HEALTHCHECK drives ready()", async () => {
  await using scope = new DockerScope();
  const image = await buildImage(scope.image("healthy"), {
    Dockerfile: [
      `FROM ${BUSYBOX_IMAGE}`,
      'HEALTHCHECK --interval=200ms --timeout=2s CMD ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8000/"]',
    ].join("\n"),
  });
  const runtime = new DockerRuntime(runtimeConfig(scope));
  try {
    const workload = await runtime.start(service(scope.service("healthy"), { image }), never);
    assert.ok(workload.ready, "ready() is provided for a HEALTHCHECK image");
    const deadline = Date.now() + 10_000;
    while (!(await workload.ready(never))) {
      assert.ok(Date.now() < deadline, "healthy in time");
      await new Promise((r) => setTimeout(r, 100));
    }
    await workload.stop(0);
  } finally {
    await runtime.close();
  }
});

dockerTest("remove_on_stop removes the container after stop", async () => {
  await using scope = new DockerScope();
  const runtime = new DockerRuntime(runtimeConfig(scope));
  try {
    const workload = await runtime.start(
      service(scope.service("ephemeral"), { remove_on_stop: true }),
      never,
    );
    await workload.stop(0);
    await workload.exited;
    assert.deepEqual(await scope.containers(), []);
  } finally {
    await runtime.close();
  }
});

dockerTest("docker_dns mode points at the container name on the network", async () => {
  await using scope = new DockerScope();
  const config = runtimeConfig(scope, { connect_mode: "docker_dns" });
  const runtime = new DockerRuntime(config);
  try {
    const web = service(scope.service("dns"), { internal_port: 8000 });
    const workload = await runtime.start(web, never);
    assert.equal(workload.upstream.href, `http://${web.name}:8000/`);
    assert.equal(
      workload.ready,
      undefined,
      "no HEALTHCHECK, no published port: the manager probes",
    );
    const info = await scope.docker.json<
      { NetworkSettings: { Networks: Record<string, unknown> } }
    >(
      "GET",
      `/containers/${web.name}/json`,
    );
    assert.deepEqual(Object.keys(info.NetworkSettings.Networks), [config.global.docker_network]);
    await workload.stop(0);
  } finally {
    await runtime.close();
  }
});

Deno.test("an unreachable Docker socket is a clear error, and adopt yields nothing", async () => {
  const runtime = new DockerRuntime({
    source: "/tmp/proxy.yaml",
    global: {
      docker_host: "unix:///tmp/nodetool-no-such-docker.sock",
      docker_network: "unused",
      connect_mode: "host_port",
    },
  });
  try {
    await assert.rejects(
      runtime.start(service("unreachable"), never),
      /Cannot start container "unreachable": Docker socket \/tmp\/nodetool-no-such-docker.sock does not exist/,
    );
    assert.equal((await runtime.adopt([service("unreachable")])).size, 0);
  } finally {
    await runtime.close();
  }
});
