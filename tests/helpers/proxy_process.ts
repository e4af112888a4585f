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

/** Absolute path of main.ts. */
const MAIN = new URL("../../main.ts", import.meta.url).pathname;
/** The repository root: the proxy runs there so deno.json's import map applies. */
const ROOT = new URL("../../", import.meta.url).pathname;

/** One JSON log line of the proxy (non-JSON lines come as `{msg: "<raw>", raw: true}`). */
export interface LogLine {
  readonly time?: string;
  readonly level?: string;
  readonly msg: string;
  readonly [field: string]: unknown;
}

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

/** A running proxy process; dispose with `await using`. */
export interface ProxyProcess extends AsyncDisposable {
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
  /** Process id of the proxy. */
  readonly pid: number;
  /** Log lines so far. */
  logs(): LogLine[];
  /** Log lines so far with this `msg` (and, when given, `service`). */
  logsOf(msg: string, service?: string): LogLine[];
  /** Resolves with the first log line (past or future) matching `predicate`; rejects after `timeoutMs`. */
  waitForLog(predicate: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Resolves with the exit code once the process has exited. */
  readonly exited: Promise<number>;
  /** Sends `signal` (default SIGTERM) and resolves with the exit code. */
  stop(signal?: Deno.Signal): Promise<number>;
}

function randomToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
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
  const child = new Deno.Command("deno", {
    args: [
      "run",
      "--quiet",
      ...permissionFlags(loaded),
      MAIN,
      "proxy",
      "--config",
      file,
      "--port",
      "0",
      "--host",
      "127.0.0.1",
      ...verbose,
    ],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();

  const lines: LogLine[] = [];
  const watchers = new Set<() => void>();
  const reading = (async () => {
    let rest = "";
    const push = (raw: string) => {
      if (raw.trim() === "") return;
      let line: LogLine;
      try {
        line = JSON.parse(raw);
      } catch {
        line = { msg: raw, raw: true };
      }
      lines.push(line);
    };
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      rest += chunk;
      let at: number;
      while ((at = rest.indexOf("\n")) >= 0) {
        push(rest.slice(0, at));
        rest = rest.slice(at + 1);
      }
      for (const wake of watchers) wake();
    }
    push(rest);
    for (const wake of watchers) wake();
  })();
  const exited = child.status.then(async (status) => {
    await reading;
    return status.code;
  });
  let gone = false;
  void exited.then(() => {
    gone = true;
    for (const wake of watchers) wake();
  });

  function waitForLog(predicate: (line: LogLine) => boolean, timeoutMs = 10_000) {
    return new Promise<LogLine>((resolve, reject) => {
      let seen = 0;
      const check = () => {
        for (; seen < lines.length; seen++) {
          if (predicate(lines[seen])) return done(() => resolve(lines[seen]));
        }
        if (gone) {
          done(() =>
            reject(new Error(`Proxy exited before the awaited log line. Log:\n${dump(lines)}`))
          );
        }
      };
      const timer = setTimeout(
        () =>
          done(() => reject(new Error(`Timed out waiting for a log line. Log:\n${dump(lines)}`))),
        timeoutMs,
      );
      const done = (settle: () => void) => {
        clearTimeout(timer);
        watchers.delete(check);
        settle();
      };
      watchers.add(check);
      check();
    });
  }

  const stop = async (signal: Deno.Signal = "SIGTERM") => {
    if (!gone) {
      try {
        child.kill(signal);
      } catch {
        // Exited in the meantime.
      }
    }
    return await exited;
  };

  let listening: LogLine;
  try {
    listening = await waitForLog((line) => line.msg === "listening", 30_000);
  } catch (error) {
    if (!gone) child.kill("SIGKILL");
    await exited;
    throw error;
  }
  const url = String(listening.url);
  const token = loaded.global.bearer_token;
  return {
    url,
    port: Number(new URL(url).port),
    token,
    auth: bearer(token),
    dir,
    pid: child.pid,
    logs: () => [...lines],
    logsOf: (msg, service) =>
      lines.filter((l) => l.msg === msg && (service === undefined || l.service === service)),
    waitForLog,
    exited,
    stop,
    async [Symbol.asyncDispose]() {
      if (!gone) {
        const timer = setTimeout(() => !gone && child.kill("SIGKILL"), 10_000);
        await stop("SIGTERM");
        clearTimeout(timer);
      }
      await exited;
      await Deno.remove(dir, { recursive: true });
    },
  };
}

function dump(lines: readonly LogLine[]): string {
  return lines.map((line) => JSON.stringify(line)).join("\n");
}

/** Resident set size of a process in KiB, via `ps -o rss=` (needs `--allow-run=ps`). */
export async function rssKiB(pid: number): Promise<number> {
  const { stdout } = await new Deno.Command("ps", {
    args: ["-o", "rss=", "-p", String(pid)],
    stdout: "piped",
    stderr: "null",
  }).output();
  const value = Number(new TextDecoder().decode(stdout).trim());
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
