/**
 * End-to-end test of the container image: the repository's Dockerfile built on the local
 * stand-in of `denoland/deno` (no registry here), run on a test-created network with the Docker
 * socket mounted and `connect_mode: docker_dns`. A request to the published loopback port
 * cold-starts a sibling container the proxy reaches by its name; idle, it is stopped; the
 * image's HEALTHCHECK reports healthy; `docker stop` drains and exits 0 through the launcher.
 *
 * Needs dockerd and the docker CLI (the build goes through `docker build` so `.dockerignore`
 * applies exactly as for users). Permissions: the Docker socket, `--allow-run=docker,tar,ldd`,
 * `--allow-net=127.0.0.1`, read/write on the temp folder, `--allow-env`.
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { socketPath } from "../src/runtimes/docker/client.ts";
import type { StatusDocument } from "../src/status/document.ts";
import {
  dockerAvailable,
  dockerHost,
  DockerScope,
  ensureBusyboxImage,
  ensureDenoBaseImage,
  TEST_LABEL,
} from "./helpers/docker.ts";
import { assertServiceAvailable, skipUnless } from "./helpers/services.ts";

const REPO = fileURLToPath(new URL("..", import.meta.url));
const TOKEN = "image-test-token-0123456789abcdef0123456789";
const AUTH = { authorization: `Bearer ${TOKEN}` };

const dockerOk = await dockerAvailable();

interface ContainerInfo {
  Id: string;
  State: { Status: string; Running: boolean; ExitCode: number; Health?: { Status: string } };
  HostConfig: { PortBindings: Record<string, unknown> | null };
  NetworkSettings: {
    Ports: Record<string, { HostIp: string; HostPort: string }[] | null> | null;
    Networks: Record<string, unknown>;
  };
}

/** Polls `check` every 200 ms until it returns a value other than undefined. */
async function waitFor<T>(
  what: string,
  timeoutMs: number,
  check: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await check();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** `docker build` of the repository with the stand-in base; returns the build time in ms. */
async function buildProxyImage(tag: string, base: string): Promise<number> {
  const started = performance.now();
  const output = await new Deno.Command("docker", {
    args: [
      "build",
      "--quiet",
      "--force-rm",
      // The build only downloads npm packages; the host network does not depend on docker0.
      "--network",
      "host",
      "--build-arg",
      `DENO_IMAGE=${base}`,
      // The stand-in carries the host's CA bundle, which trusts this network's TLS inspection.
      "--build-arg",
      "DENO_TLS_CA_STORE=system",
      "--label",
      `${TEST_LABEL}=true`,
      "--tag",
      tag,
      REPO,
    ],
    env: { DOCKER_BUILDKIT: "0", DOCKER_HOST: dockerHost() },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  assert.ok(
    output.success,
    `docker build failed:\n${text.decode(output.stdout)}${text.decode(output.stderr)}`,
  );
  return performance.now() - started;
}

Deno.test({
  name: "image: docker_dns cold start by container name, idle stop, healthy, graceful stop",
  ignore: skipUnless(dockerOk),
}, async () => {
  assertServiceAvailable("dockerd", dockerOk);
  await using scope = new DockerScope();
  const docker = scope.docker;
  const [base, busybox] = await Promise.all([ensureDenoBaseImage(), ensureBusyboxImage()]);
  const image = scope.image("proxy");
  const buildMs = await buildProxyImage(image, base);
  const size = (await docker.json<{ Size: number }>("GET", `/images/${image}/json`)).Size;
  console.log(`image built in ${Math.round(buildMs)} ms, ${(size / 1e6).toFixed(1)} MB`);

  const network = scope.network("image");
  await docker.json("POST", "/networks/create", {
    body: { Name: network, Driver: "bridge", Labels: { [TEST_LABEL]: "true" } },
  });
  const web = scope.service("web");
  const proxy = scope.service("proxy");
  const configDir = await Deno.makeTempDir({ prefix: "nodetool-image-" });
  try {
    await Deno.writeTextFile(
      `${configDir}/proxy.yaml`,
      [
        "global:",
        "  bearer_token: ${PROXY_BEARER_TOKEN}",
        "  listen_http: 80",
        "  idle_timeout: 2",
        "  shutdown_grace: 5",
        `  docker_network: ${network}`,
        "  connect_mode: docker_dns",
        "services:",
        `  - name: ${web}`,
        "    path: /web",
        `    image: ${busybox}`,
        "    internal_port: 8000",
        "",
      ].join("\n"),
    );
    const socket = socketPath(dockerHost());
    await docker.json("POST", "/containers/create", {
      query: { name: proxy },
      body: {
        Image: image,
        Env: [`PROXY_BEARER_TOKEN=${TOKEN}`],
        Labels: { [TEST_LABEL]: "true" },
        // The image's check, probed every second instead of every 30 s.
        Healthcheck: { Interval: 1e9, StartPeriod: 0 },
        HostConfig: {
          Binds: [`${socket}:/var/run/docker.sock`, `${configDir}:/etc/nodetool:ro`],
          PortBindings: { "80/tcp": [{ HostIp: "127.0.0.1", HostPort: "" }] },
          NetworkMode: network,
        },
      },
    });
    await docker.json("POST", `/containers/${proxy}/start`);
    const inspect = (name: string) => docker.json<ContainerInfo>("GET", `/containers/${name}/json`);
    const port = (await inspect(proxy)).NetworkSettings.Ports?.["80/tcp"]?.[0]?.HostPort;
    assert.ok(port, "the proxy's port 80 is published on loopback");
    const url = (path: string) => `http://127.0.0.1:${port}${path}`;

    try {
      await waitFor("the proxy to answer /healthz", 30_000, async () => {
        const response = await fetch(url("/healthz")).catch(() => null);
        await response?.body?.cancel();
        return response?.status === 200 ? true : undefined;
      });
      assert.deepEqual(await scope.containers(), [], "nothing runs before the first request");

      const response = await fetch(url("/web/"), { headers: AUTH });
      assert.equal(response.status, 200);
      assert.equal(await response.text(), "hello from busybox\n");
      assert.match(response.headers.get("server-timing") ?? "", /^cold-start;dur=\d+/);

      const service = await inspect(web);
      assert.equal(service.State.Running, true);
      assert.ok(network in service.NetworkSettings.Networks, "the service joined the network");
      assert.deepEqual(
        Object.values(service.NetworkSettings.Ports ?? {}).filter((b) => b?.length),
        [],
        "the service publishes no port: only its name on the network reaches it",
      );
      const status = await (await fetch(url("/proxy/status"), { headers: AUTH }))
        .json() as StatusDocument;
      assert.equal(status.services[0].upstream, `http://${web}:8000/`);

      await waitFor("the image's HEALTHCHECK to report healthy", 30_000, async () => {
        const health = (await inspect(proxy)).State.Health?.Status;
        assert.notEqual(health, "unhealthy");
        return health === "healthy" ? true : undefined;
      });

      // busybox httpd ignores SIGTERM, so the idle stop takes the kill grace (10 s).
      await waitFor("the idle service to be stopped", 40_000, async () => {
        const status = await (await fetch(url("/proxy/status"), { headers: AUTH }))
          .json() as StatusDocument;
        return status.services[0].state === "stopped" ? true : undefined;
      });
      assert.equal((await inspect(web)).State.Running, false);

      await docker.json("POST", `/containers/${proxy}/stop`, { query: { t: 20 } });
      const { State } = await inspect(proxy);
      assert.equal(State.Status, "exited");
      assert.equal(State.ExitCode, 0, "SIGTERM reached the proxy through the launcher: drained");
    } catch (error) {
      const frames = await docker.logs(proxy, 60).catch(() => []);
      const logs = frames.map((f) => new TextDecoder().decode(f.data)).join("");
      throw new Error(`${error}\n--- proxy container log ---\n${logs}`, { cause: error });
    }
  } finally {
    await Deno.remove(configDir, { recursive: true });
  }
});
