/**
 * Docker fixtures for tests: images built locally through the Engine API (no registry here),
 * and scoped cleanup of the containers, networks and images a test made.
 *
 * Permissions: the Docker socket (`--allow-read=/var/run/docker.sock
 * --allow-write=/var/run/docker.sock --allow-net=unix:/var/run/docker.sock`), `--allow-run=tar`,
 * `--allow-env=DOCKER_HOST`, and read/write on the temp folder; the Deno stand-in image also
 * needs `--allow-run=ldd` (tar copies the binary, its libraries and the CA bundle).
 *
 * @module
 */

import { dirname, join } from "node:path";
import { DockerClient, DockerNotFoundError } from "../../src/runtimes/docker/client.ts";
import { LABEL_MANAGED, LABEL_SERVICE } from "../../src/runtimes/docker/spec.ts";

/** Label on every image, container and network the test helpers create. */
export const TEST_LABEL = "com.nodetool.test";

/** The busybox httpd image: `/bin/busybox httpd -f -p 8000 -h /www`, about 2 MB. */
export const BUSYBOX_IMAGE = "nodetool-test/busybox-httpd:1";

/** The local stand-in of the official `denoland/deno` image (kept between runs, like a pull). */
export const DENO_BASE_IMAGE = `local/deno:${Deno.version.deno}`;

/** `DOCKER_HOST`, else the local socket. */
export function dockerHost(): string {
  return Deno.env.get("DOCKER_HOST") ?? "unix:///var/run/docker.sock";
}

/** A client for the test daemon. */
export function testDocker(): DockerClient {
  return new DockerClient(dockerHost());
}

/**
 * Whether dockerd answers on {@link dockerHost}; pair with `skipUnless`.
 *
 * @example
 * ```ts
 * const dockerOk = await dockerAvailable();
 * Deno.test({ name: "x", ignore: skipUnless(dockerOk) }, async () => {
 *   assertServiceAvailable("dockerd", dockerOk);
 * });
 * ```
 */
export async function dockerAvailable(): Promise<boolean> {
  try {
    await testDocker().ping(AbortSignal.timeout(2000));
    return true;
  } catch {
    return false;
  }
}

/** The image's labels, or null when there is no such image. */
async function imageLabels(
  docker: DockerClient,
  name: string,
): Promise<Record<string, string> | null> {
  try {
    const info = await docker.json<{ Config: { Labels: Record<string, string> | null } }>(
      "GET",
      `/images/${name}/json`,
    );
    return info.Config.Labels ?? {};
  } catch (error) {
    if (error instanceof DockerNotFoundError) return null;
    throw error;
  }
}

/** Streams `tar -c` of a folder. */
async function tarOf<T>(dir: string, use: (tar: ReadableStream<Uint8Array>) => Promise<T>) {
  const child = new Deno.Command("tar", { args: ["-C", dir, "-c", "."], stdout: "piped" }).spawn();
  const result = await use(child.stdout);
  const status = await child.status;
  if (!status.success) throw new Error(`tar of ${dir} failed with code ${status.code}`);
  return result;
}

/** Writes `files` (path → text) under a fresh temp folder, runs `use`, removes the folder. */
async function withFolder<T>(
  files: Record<string, string>,
  use: (dir: string) => Promise<T>,
): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "nodetool-docker-" });
  try {
    for (const [path, text] of Object.entries(files)) {
      await Deno.mkdir(dirname(join(dir, path)), { recursive: true });
      await Deno.writeTextFile(join(dir, path), text, { mode: 0o755 });
    }
    return await use(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * `docker import` through the API: the folder `rootfs` becomes image `name` with Dockerfile
 * `changes` (e.g. `CMD [...]`) and the test label.
 */
export async function importImage(
  name: string,
  rootfs: string,
  changes: string[],
): Promise<string> {
  const [repo, tag] = name.split(":");
  await tarOf(rootfs, (body) =>
    Array.fromAsync(
      testDocker().stream("POST", "/images/create", {
        query: { fromSrc: "-", repo, tag, changes: [...changes, `LABEL ${TEST_LABEL}=true`] },
        body,
      }),
    ));
  return name;
}

/**
 * `docker build` through the API (classic builder) of a context given as files; the
 * `Dockerfile` is one of them. The image gets the test label.
 *
 * @example
 * ```ts
 * await buildImage("nodetool-test/healthy:1", {
 *   Dockerfile: `FROM ${BUSYBOX_IMAGE}\nHEALTHCHECK --interval=1s CMD ["wget", "-q", "-O-", "http://127.0.0.1:8000/"]`,
 * });
 * ```
 */
export async function buildImage(name: string, files: Record<string, string>): Promise<string> {
  await withFolder(
    files,
    (dir) =>
      tarOf(dir, (body) =>
        Array.fromAsync(
          testDocker().stream("POST", "/build", {
            query: { t: name, rm: true, forcerm: true, labels: { [TEST_LABEL]: "true" } },
            body,
          }),
        )),
  );
  return name;
}

/**
 * A 2 MB image with a static busybox (all applets hard-linked in `/bin`) and `/www/index.html`
 * ("hello from busybox"); by default it serves `/www` on port 8000 with busybox httpd.
 * Idempotent per name.
 */
export async function ensureBusyboxImage(
  name = BUSYBOX_IMAGE,
  cmd = ["/bin/busybox", "httpd", "-f", "-p", "8000", "-h", "/www"],
): Promise<string> {
  if (await imageLabels(testDocker(), name) !== null) return name;
  await withFolder({ "www/index.html": "hello from busybox\n" }, async (root) => {
    await Deno.mkdir(join(root, "bin"));
    await Deno.mkdir(join(root, "tmp"), { mode: 0o1777 });
    await Deno.copyFile("/bin/busybox", join(root, "bin/busybox"));
    const list = await new Deno.Command("/bin/busybox", { args: ["--list"] }).output();
    for (const applet of new TextDecoder().decode(list.stdout).split("\n")) {
      if (applet && applet !== "busybox") {
        await Deno.link(join(root, "bin/busybox"), join(root, "bin", applet));
      }
    }
    await importImage(name, root, [`CMD ${JSON.stringify(cmd)}`]);
  });
  return name;
}

/** The shared libraries `ldd` lists for `binary` (absolute paths; the vDSO has none). */
async function sharedLibraries(binary: string): Promise<string[]> {
  const ldd = await new Deno.Command("ldd", { args: [binary], stdout: "piped" }).output();
  if (!ldd.success) throw new Error(`ldd ${binary} failed with code ${ldd.code}`);
  const text = new TextDecoder().decode(ldd.stdout);
  return [...text.matchAll(/(?:=> |^\s*)(\/\S+)/gm)].map((m) => m[1]);
}

/**
 * Copies host files (symlinks followed) into `root` under the same paths, by piping
 * `tar -c -h` into `tar -x`: only `--allow-run=tar` is needed, no read permission on them.
 */
async function copyHostFiles(paths: readonly string[], root: string): Promise<void> {
  const pack = new Deno.Command("tar", {
    args: ["-c", "-h", "-C", "/", ...paths.map((p) => p.replace(/^\/+/, ""))],
    stdout: "piped",
  }).spawn();
  const unpack = new Deno.Command("tar", { args: ["-x", "-C", root], stdin: "piped" }).spawn();
  await pack.stdout.pipeTo(unpack.stdin);
  const [packed, unpacked] = await Promise.all([pack.status, unpack.status]);
  if (!packed.success || !unpacked.success) {
    throw new Error(`copying ${paths.join(", ")} with tar failed`);
  }
}

/** Label recording how the Deno stand-in was made; an image with another value is rebuilt. */
const DENO_BASE_RECIPE_LABEL = "com.nodetool.test.recipe";
const DENO_BASE_RECIPE = "tini-1";

/** Moves `from` to `to` inside `root`, removing the folders `from` leaves empty. */
async function move(root: string, from: string, to: string): Promise<void> {
  if (from === to) return;
  await Deno.rename(join(root, from), join(root, to));
  for (let dir = dirname(from); dir !== "/"; dir = dirname(dir)) {
    try {
      await Deno.remove(join(root, dir)); // fails once a folder is not empty
    } catch {
      return;
    }
  }
}

/**
 * Builds (once; kept between runs like a pulled base image) the local stand-in of the official
 * `denoland/deno` image, tagged {@link DENO_BASE_IMAGE}: this deno binary at `/usr/bin/deno`
 * and `/bin/deno` (hard links), the shared libraries `ldd` lists for it, the CA bundle at
 * `/etc/ssl/certs/ca-certificates.crt`, `/tmp` (1777), `DENO_DIR=/deno-dir/`, and Debian's
 * static tini as `/tini`. Like the official image, tini is PID 1 and runs `deno` with the
 * container's arguments, so `CMD ["run", …]` (a subcommand or flags) works on both images.
 *
 * Permissions: the Docker socket, `--allow-run=tar,ldd`, read/write on the temp folder.
 * Needs Debian's `tini` package (a dependency of `docker.io`).
 *
 * @example
 * ```ts
 * const base = await ensureDenoBaseImage(); // "local/deno:2.9.6"
 * ```
 */
export async function ensureDenoBaseImage(): Promise<string> {
  const labels = await imageLabels(testDocker(), DENO_BASE_IMAGE);
  if (labels?.[DENO_BASE_RECIPE_LABEL] === DENO_BASE_RECIPE) return DENO_BASE_IMAGE;
  const deno = Deno.execPath();
  const tini = "/usr/bin/tini-static";
  const files = [deno, tini, "/etc/ssl/certs/ca-certificates.crt"];
  files.push(...await sharedLibraries(deno));
  await withFolder({}, async (root) => {
    await copyHostFiles(files, root);
    const at = (path: string) => join(root, path);
    await Deno.mkdir(at("usr/bin"), { recursive: true });
    await Deno.mkdir(at("bin"), { recursive: true });
    await move(root, deno, "/usr/bin/deno");
    await Deno.link(at("usr/bin/deno"), at("bin/deno"));
    await move(root, tini, "/tini");
    await Deno.mkdir(at("tmp"), { mode: 0o1777 });
    await Deno.chmod(at("tmp"), 0o1777);
    await Deno.mkdir(at("deno-dir"));
    await importImage(DENO_BASE_IMAGE, root, [
      `LABEL ${DENO_BASE_RECIPE_LABEL}=${DENO_BASE_RECIPE}`,
      "ENV DENO_DIR=/deno-dir/",
      'ENTRYPOINT ["/tini", "--", "/usr/bin/deno"]',
      'CMD ["--version"]',
    ]);
  });
  return DENO_BASE_IMAGE;
}

/**
 * An image `name` running one Deno script (no remote imports, listening wherever it likes),
 * built on the stand-in base with a Dockerfile that also builds on the official image
 * (`--build-arg BASE=denoland/deno:<version>`). The script runs with `--allow-net
 * --allow-env --allow-read --allow-write`. Rebuilt on every call (the build cache makes a
 * repeat cheap); remove it through a {@link DockerScope} image name.
 *
 * @example
 * ```ts
 * await using scope = new DockerScope();
 * const image = await buildDenoApp(scope.image("sse"), `Deno.serve({ port: 8000 }, () => new Response("hi"));`);
 * ```
 */
export async function buildDenoApp(name: string, source: string): Promise<string> {
  await ensureDenoBaseImage();
  return await buildImage(name, {
    "app.ts": source,
    Dockerfile: [
      `ARG BASE=${DENO_BASE_IMAGE}`,
      "FROM ${BASE}",
      "COPY app.ts /app/app.ts",
      'CMD ["run", "--allow-net", "--allow-env", "--allow-read", "--allow-write", "/app/app.ts"]',
    ].join("\n"),
  });
}

/**
 * Tracks what a test creates and removes it on dispose: containers of the services it named
 * (by the runtime's service label), networks and images.
 *
 * @example
 * ```ts
 * await using scope = new DockerScope();
 * const name = scope.service("web"); // unique service/container name, removed at the end
 * ```
 */
export class DockerScope implements AsyncDisposable {
  /** The client the scope cleans up with. */
  readonly docker: DockerClient = testDocker();
  readonly #services = new Set<string>();
  readonly #networks = new Set<string>();
  readonly #images = new Set<string>();
  readonly #suffix = crypto.randomUUID().slice(0, 8);

  /** A unique service (container) name to be removed at the end. */
  service(prefix: string): string {
    const name = `nt-${prefix}-${this.#suffix}`;
    this.#services.add(name);
    return name;
  }

  /** A unique network name to be removed at the end. */
  network(prefix = "net"): string {
    const name = `nt-${prefix}-${this.#suffix}`;
    this.#networks.add(name);
    return name;
  }

  /** A unique image name (`nodetool-test/<prefix>-<suffix>:1`) to be removed at the end. */
  image(prefix: string): string {
    const name = `nodetool-test/${prefix}-${this.#suffix}:1`;
    this.#images.add(name);
    return name;
  }

  /** Managed containers of this scope's services, running or not. */
  async containers(): Promise<{ Id: string; State: string; Names: string[] }[]> {
    const all = await this.docker.json<
      { Id: string; State: string; Names: string[]; Labels: Record<string, string> }[]
    >("GET", "/containers/json", {
      query: { all: true, filters: { label: [`${LABEL_MANAGED}=true`] } },
    });
    return all.filter((c) => this.#services.has(c.Labels[LABEL_SERVICE]));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    const ignoreMissing = (error: unknown) => {
      if (!(error instanceof DockerNotFoundError)) throw error;
    };
    for (const name of this.#services) {
      await this.docker.json("DELETE", `/containers/${name}`, { query: { force: true, v: true } })
        .catch(ignoreMissing);
    }
    for (const name of this.#networks) {
      // By ID: racing creates can leave two networks of one name, and a name is then ambiguous.
      const networks = await this.docker.json<{ Id: string; Name: string }[]>("GET", "/networks", {
        query: { filters: { name: [name] } },
      });
      for (const network of networks.filter((n) => n.Name === name)) {
        await this.docker.json("DELETE", `/networks/${network.Id}`).catch(ignoreMissing);
      }
    }
    for (const name of this.#images) {
      await this.docker.json("DELETE", `/images/${name}`, { query: { force: true } })
        .catch(ignoreMissing);
    }
  }
}
