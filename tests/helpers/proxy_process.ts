/**
 * Runs the real proxy as a subprocess (`deno run <permissionFlags(config)> main.ts proxy
 * --port 0`), with exactly the permission flags the daemon would derive from its config, and
 * keeps its JSON log lines in memory.
 *
 * Tests using it need `--allow-run=deno,ps --allow-read=.,/tmp --allow-write=/tmp --allow-env`
 * and `--allow-net=127.0.0.1`.
 *
 * @module
 */

import { dirname, join } from "node:path";
import { stringify } from "yaml";
import { loadConfig } from "../../src/config/load.ts";
import { permissionFlags } from "../../src/daemon/permissions.ts";
import { randomToken } from "./daemon.ts";
import { ps } from "./fixture_service.ts";
import { type LoggedProcess, type LogLine, spawnLogged } from "./logged_process.ts";

/** What the config is built from when no YAML text is given. */
export interface ProxyProcessOptions {
  /** `global:` keys; merged over the defaults (random token, loopback, webroot in the temp dir). */
  readonly global?: Record<string, unknown>;
  /** `services:` entries as they would be written in YAML. */
  readonly services: readonly Record<string, unknown>[];
  /** Files to create in the temp dir first, by relative path (e.g. `acme/<token>`). */
  readonly files?: Readonly<Record<string, string>>;
  /** Pass `--verbose`. */
  readonly verbose?: boolean;
}

/** A running proxy process; dispose with `await using` (also removes {@link dir}). */
export interface ProxyProcess extends LoggedProcess {
  /** Base URL with the real port, e.g. `http://127.0.0.1:41234/`. */
  readonly url: string;
  /** The port it listens on. */
  readonly port: number;
  /** `global.bearer_token`. */
  readonly token: string;
  /** `{authorization: "Bearer <token>"}`. */
  readonly auth: Readonly<Record<string, string>>;
  /** The temp dir holding the config (and the default `acme_webroot`, `<dir>/acme`). */
  readonly dir: string;
  /** Log lines so far with this `msg` (and, when given, `service`). */
  logsOf(msg: string, service?: string): LogLine[];
}

/** `GET` options with the proxy's token. */
export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

/**
 * Writes the config into a fresh temp dir and starts `main.ts proxy --config F --port 0
 * --host 127.0.0.1` with `permissionFlags(config)`; resolves once it logged `listening`.
 * `config` is YAML text (written as is) or options to build it from.
 *
 * @example
 * ```ts
 * await using proxy = await startProxy({ services: [{ name: "app", path: "/app", command }] });
 * const response = await fetch(proxy.url + "app/", { headers: proxy.auth });
 * ```
 */
export async function startProxy(config: string | ProxyProcessOptions): Promise<ProxyProcess> {
  const dir = await Deno.makeTempDir({ prefix: "proxy_process_" });
  try {
    return await launch(dir, config);
  } catch (error) {
    await Deno.remove(dir, { recursive: true });
    throw error;
  }
}

async function launch(dir: string, config: string | ProxyProcessOptions): Promise<ProxyProcess> {
  const file = join(dir, "proxy.yaml");
  let text: string;
  if (typeof config === "string") {
    text = config;
  } else {
    await Deno.mkdir(join(dir, "acme"));
    for (const [path, content] of Object.entries(config.files ?? {})) {
      await Deno.mkdir(dirname(join(dir, path)), { recursive: true });
      await Deno.writeTextFile(join(dir, path), content);
    }
    text = stringify({
      global: {
        bearer_token: randomToken(),
        listen_host: "127.0.0.1",
        acme_webroot: join(dir, "acme"),
        shutdown_grace: 5,
        ...config.global,
      },
      services: config.services,
    });
  }
  await Deno.writeTextFile(file, text);
  const { config: loaded } = await loadConfig(file, {});
  const verbose = typeof config !== "string" && config.verbose ? ["--verbose"] : [];
  const proxy = spawnLogged(
    permissionFlags(loaded),
    ["proxy", "--config", file, "--port", "0", "--host", "127.0.0.1", ...verbose],
    { name: "proxy", waitTimeoutMs: 10_000 },
  );
  let listening: LogLine;
  try {
    listening = await proxy.waitForLog((line) => line.msg === "listening", 30_000);
  } catch (error) {
    await proxy.stop("SIGKILL");
    throw error;
  }
  const url = String(listening.url);
  const token = loaded.global.bearer_token;
  return {
    ...proxy,
    url,
    port: Number(new URL(url).port),
    token,
    auth: bearer(token),
    dir,
    logsOf: (msg, service) =>
      proxy.logs().filter((l) => l.msg === msg && (service === undefined || l.service === service)),
    async [Symbol.asyncDispose]() {
      await proxy[Symbol.asyncDispose]();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** Resident set size of a process in KiB, via `ps -o rss=` (needs `--allow-run=ps`). */
export async function rssKiB(pid: number): Promise<number> {
  const value = Number((await ps(["-o", "rss=", "-p", String(pid)])).trim());
  if (!Number.isFinite(value) || value <= 0) throw new Error(`No RSS for process ${pid}`);
  return value;
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Milliseconds between two log lines' `time` fields. */
export function logGapMs(from: LogLine, to: LogLine): number {
  return Date.parse(String(to.time)) - Date.parse(String(from.time));
}
