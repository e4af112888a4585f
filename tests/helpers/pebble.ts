/**
 * Runs Debian's `pebble` ACME test server and `pebble-challtestsrv` (mock DNS answering
 * 127.0.0.1 for every name) on loopback, as `../shared/rigs.md` describes.
 *
 * Pebble listens on fixed ports (14000 ACME, 15000 management, 8053/8055 for the DNS mock):
 * run one instance per test file and keep the tests in it sequential.
 *
 * Needs `--allow-run=pebble,pebble-challtestsrv,openssl`, `--allow-net=127.0.0.1`, and
 * read/write on the temp directory (`--allow-read=/tmp --allow-write=/tmp`).
 *
 * @example
 * ```ts
 * await using pebble = await startPebble({ httpPort: 5002 });
 * const client = Deno.createHttpClient({ caCerts: [pebble.listenerCaPem] });
 * ```
 *
 * @module
 */

import { makeCa, makeLeaf } from "./openssl.ts";

/** Pebble's ACME directory on loopback. */
export const PEBBLE_DIRECTORY = "https://127.0.0.1:14000/dir";
const MANAGEMENT = "https://127.0.0.1:15000";
const CHALLTESTSRV_MANAGEMENT = "http://127.0.0.1:8055";

/** Whether the `pebble` and `pebble-challtestsrv` binaries are installed. */
export async function pebbleAvailable(): Promise<boolean> {
  for (const command of ["pebble", "pebble-challtestsrv"]) {
    try {
      await new Deno.Command(command, { args: ["-h"], stdout: "null", stderr: "null" }).output();
    } catch (error) {
      // Missing binaries mean "not installed"; a permission error is a setup bug: let it throw.
      if (error instanceof Deno.errors.NotFound) return false;
      throw error;
    }
  }
  return true;
}

/** Options for {@link startPebble}. */
export interface PebbleOptions {
  /** The port pebble dials for HTTP-01 validation (your challenge server's port). */
  httpPort: number;
  /** Issued certificates' lifetime in seconds (pebble's default is about 5 years). */
  certificateValidityPeriod?: number;
  /** Percentage of valid nonces pebble rejects with badNonce (default 0 here). */
  nonceReject?: number;
}

/** A running pebble; `await using` stops it and removes its temp directory. */
export interface Pebble extends AsyncDisposable {
  /** The ACME directory URL. */
  directoryUrl: string;
  /** PEM of the CA that signed pebble's own listener certificate. */
  listenerCaPem: string;
  /** Path of that PEM (for `global.acme.ca_bundle`). */
  listenerCaFile: string;
  /** The working directory (config, certificates, logs). */
  dir: string;
  /** Fetches the current issuing root (it changes at every start). */
  root(): Promise<string>;
  /** Stops pebble only (the DNS mock keeps running); for "CA down" tests. */
  stop(): Promise<void>;
  /**
   * (Re)starts pebble with `changes` applied to the options it was started with: a new root,
   * no accounts, no orders.
   */
  restart(changes?: Partial<PebbleOptions>): Promise<void>;
}

/** Makes a P-256 CA (`ca.pem`) and a leaf for localhost/127.0.0.1 signed by it (`cert.pem`, `key.pem`), in `dir`. */
async function makeListenerCertificates(dir: string): Promise<void> {
  const leaf = await makeLeaf(dir, await makeCa(dir), ["DNS:localhost", "IP:127.0.0.1"]);
  await Deno.writeTextFile(`${dir}/cert.pem`, leaf.cert);
  await Deno.writeTextFile(`${dir}/key.pem`, leaf.key);
}

/** Spawns `cmd`, its output appended to `logFile`. */
async function spawnLogged(
  cmd: string,
  args: string[],
  env: Record<string, string>,
  cwd: string,
  logFile: string,
): Promise<{ child: Deno.ChildProcess; done: Promise<unknown> }> {
  const child = new Deno.Command(cmd, { args, env, cwd, stdout: "piped", stderr: "piped" }).spawn();
  const out = await Deno.open(logFile, { append: true, create: true });
  const err = await Deno.open(logFile, { append: true, create: true });
  const done = Promise.all([child.stdout.pipeTo(out.writable), child.stderr.pipeTo(err.writable)]);
  return { child, done };
}

async function stop(proc: { child: Deno.ChildProcess; done: Promise<unknown> }): Promise<void> {
  try {
    proc.child.kill("SIGTERM");
  } catch {
    // Already exited.
  }
  await proc.child.status;
  await proc.done;
}

/** Polls `url` until it answers (any status) or 10 s pass. */
async function waitForUrl(url: string, client?: Deno.HttpClient): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const response = await fetch(url, { client });
      await response.body?.cancel();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`${url} did not come up: ${error}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** Starts the DNS mock and pebble in a fresh temp directory; throws if either fails to come up. */
export async function startPebble(options: PebbleOptions): Promise<Pebble> {
  const dir = await Deno.makeTempDir({ prefix: "pebble-" });
  await makeListenerCertificates(dir);
  const writeConfig = (o: PebbleOptions) =>
    Deno.writeTextFile(
      `${dir}/pebble.json`,
      JSON.stringify({
        pebble: {
          listenAddress: "127.0.0.1:14000",
          managementListenAddress: "127.0.0.1:15000",
          certificate: `${dir}/cert.pem`,
          privateKey: `${dir}/key.pem`,
          httpPort: o.httpPort,
          tlsPort: 5001,
          ocspResponderURL: "",
          externalAccountBindingRequired: false,
          ...(o.certificateValidityPeriod
            ? { certificateValidityPeriod: o.certificateValidityPeriod }
            : {}),
        },
      }),
    );
  const listenerCaPem = await Deno.readTextFile(`${dir}/ca.pem`);
  const httpClient = Deno.createHttpClient({ caCerts: [listenerCaPem] });
  const log = `${dir}/pebble.log`;

  const dns = await spawnLogged(
    "pebble-challtestsrv",
    [
      "-dns01",
      "127.0.0.1:8053",
      "-management",
      "127.0.0.1:8055",
      "-http01",
      "",
      "-https01",
      "",
      "-tlsalpn01",
      "",
      "-defaultIPv4",
      "127.0.0.1",
      "-defaultIPv6",
      "",
    ],
    {},
    dir,
    log,
  );
  let pebble: { child: Deno.ChildProcess; done: Promise<unknown> } | null = null;
  const stopPebbleProcess = async () => {
    if (pebble) await stop(pebble);
    pebble = null;
  };
  let current = options;
  const startPebbleProcess = async (changes: Partial<PebbleOptions> = {}) => {
    await stopPebbleProcess();
    current = { ...current, ...changes };
    await writeConfig(current);
    pebble = await spawnLogged(
      "pebble",
      ["-config", `${dir}/pebble.json`, "-dnsserver", "127.0.0.1:8053"],
      {
        PEBBLE_VA_NOSLEEP: "1",
        PEBBLE_AUTHZREUSE: "0",
        PEBBLE_WFE_NONCEREJECT: String(current.nonceReject ?? 0),
      },
      dir,
      log,
    );
    await waitForUrl(PEBBLE_DIRECTORY, httpClient);
  };
  const dispose = async () => {
    await stopPebbleProcess();
    await stop(dns);
    httpClient.close();
    await Deno.remove(dir, { recursive: true });
  };
  try {
    await waitForUrl(CHALLTESTSRV_MANAGEMENT);
    await startPebbleProcess();
  } catch (error) {
    const output = await Deno.readTextFile(log).catch(() => "");
    await dispose();
    throw new Error(`${error}\n${output}`);
  }
  return {
    directoryUrl: PEBBLE_DIRECTORY,
    listenerCaPem,
    listenerCaFile: `${dir}/ca.pem`,
    dir,
    async root() {
      const response = await fetch(`${MANAGEMENT}/roots/0`, { client: httpClient });
      if (!response.ok) throw new Error(`pebble roots/0 answered ${response.status}`);
      return await response.text();
    },
    stop: stopPebbleProcess,
    restart: startPebbleProcess,
    [Symbol.asyncDispose]: dispose,
  };
}
