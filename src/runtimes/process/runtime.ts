/**
 * The process runtime: services with `command:` run as local child processes. It needs no
 * Docker engine and is the default that lets the proxy run anywhere Deno runs.
 *
 * Children get a clean environment: the service's `environment`, `PORT`, `HOST=127.0.0.1`
 * and only the basics listed in {@link INHERITED_ENV} from the proxy (never its tokens).
 * They are not put in their own process group (signalling a group would need an unscoped
 * `--allow-run`), so a shell wrapper should `exec` the real program for signals to reach it.
 *
 * @module
 */

import type { ServiceConfig } from "../../config/schema.ts";
import { log, logEnabled } from "../../log.ts";
import type { ExitInfo, Runtime, Workload } from "../../services/runtime.ts";
import { OutputTail, pumpLines } from "./output.ts";

/**
 * Variables a child inherits from the proxy's environment when the proxy may read them
 * (`--allow-env`). Everything else must be given in the service's `environment`.
 */
export const INHERITED_ENV: readonly string[] = [
  "PATH",
  "HOME",
  "USER",
  "LOGNAME",
  "SHELL",
  "LANG",
  "LC_ALL",
  "LC_CTYPE",
  "TZ",
  "TMPDIR",
  "DENO_DIR",
  "DENO_TLS_CA_STORE",
  "SSL_CERT_FILE",
  "SSL_CERT_DIR",
  "NO_COLOR",
];

/** How long `exited` waits for output after the process ended (a grandchild may hold the pipe). */
const OUTPUT_DRAIN_MS = 250;

/** Children still running, killed when the proxy exits so none outlives it. */
const live = new Set<Deno.ChildProcess>();
let unloadHookInstalled = false;

function killLiveChildren(): void {
  for (const child of live) {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  }
}

function track(child: Deno.ChildProcess): void {
  if (!unloadHookInstalled) {
    globalThis.addEventListener("unload", killLiveChildren);
    unloadHookInstalled = true;
  }
  live.add(child);
}

/** Options for {@link ProcessRuntime}. */
export interface ProcessRuntimeOptions {
  /** Output lines kept per workload for error reports. Default 50. */
  tailLines?: number;
  /** Working directory of the children (the config file's folder). Default: the proxy's. */
  cwd?: string;
}

/**
 * Runs `command` services as child processes listening on `127.0.0.1:$PORT`.
 *
 * Permissions: `--allow-run=<program>` for every service's `command[0]`; `--allow-net=127.0.0.1`
 * to pick a free port when `host_port` is unset. Inherited variables are read only when
 * `--allow-env` grants them.
 *
 * @example
 * ```ts
 * const runtime = new ProcessRuntime();
 * const workload = await runtime.start(service, AbortSignal.timeout(60_000));
 * // … later
 * await workload.stop(10_000);
 * ```
 */
export class ProcessRuntime implements Runtime {
  /** Always `"process"`. */
  readonly kind = "process";
  readonly #tailLines: number;
  readonly #cwd: string | undefined;

  /** @param options output tail size and working directory. */
  constructor(options: ProcessRuntimeOptions = {}) {
    this.#tailLines = options.tailLines ?? 50;
    this.#cwd = options.cwd;
  }

  /**
   * Spawns the service's `command`. Resolves once the process is spawned; rejects with an
   * `Error` when the program cannot be run (not found, not permitted).
   *
   * Requires `--allow-run` for `command[0]`, and `--allow-net=127.0.0.1` without `host_port`.
   */
  start(service: ServiceConfig, signal: AbortSignal): Promise<Workload> {
    try {
      return Promise.resolve(this.#spawn(service, signal));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #spawn(service: ServiceConfig, signal: AbortSignal): Workload {
    const [program, ...args] = service.command ?? [];
    if (program === undefined) {
      throw new TypeError(`Service "${service.name}" has no command to run`);
    }
    const port = service.host_port ?? freeLoopbackPort();
    signal.throwIfAborted();
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(program, {
        args,
        env: { ...inheritedEnv(), ...service.environment, PORT: String(port), HOST: "127.0.0.1" },
        clearEnv: true,
        cwd: this.#cwd,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new Error(`Cannot run ${JSON.stringify(program)} for "${service.name}": ${reason}`, {
        cause: error,
      });
    }
    track(child);
    log("debug", "process spawned", { service: service.name, pid: child.pid, port });
    const upstream = new URL(`http://127.0.0.1:${port}`);
    return new ProcessWorkload(service.name, child, upstream, this.#tailLines);
  }
}

/** One running child process. */
class ProcessWorkload implements Workload {
  readonly upstream: URL;
  readonly exited: Promise<ExitInfo>;
  readonly #child: Deno.ChildProcess;
  readonly #tail: OutputTail;
  #done = false;

  constructor(name: string, child: Deno.ChildProcess, upstream: URL, tailLines: number) {
    this.upstream = upstream;
    this.#child = child;
    this.#tail = new OutputTail(tailLines);
    const drain = new AbortController();
    const pump = (stream: ReadableStream<Uint8Array>, which: "stdout" | "stderr") =>
      pumpLines(stream, (line) => {
        this.#tail.push(line);
        const level = which === "stderr" ? "info" : "debug";
        if (logEnabled(level)) log(level, "service output", { service: name, stream: which, line });
      }, drain.signal);
    const pumps = Promise.all([pump(child.stdout, "stdout"), pump(child.stderr, "stderr")]);
    this.exited = child.status.then(async (status) => {
      this.#done = true;
      live.delete(child);
      const timer = setTimeout(() => drain.abort(), OUTPUT_DRAIN_MS);
      await pumps;
      clearTimeout(timer);
      return { code: status.signal ? null : status.code, signal: status.signal };
    });
  }

  logTail(): string {
    return this.#tail.text();
  }

  /** SIGTERM, then SIGKILL once `graceMs` has passed; resolves when the process is gone. */
  async stop(graceMs: number): Promise<void> {
    if (this.#done) {
      await this.exited;
      return;
    }
    this.#kill("SIGTERM");
    const timer = setTimeout(() => this.#kill("SIGKILL"), graceMs);
    try {
      await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  #kill(signal: Deno.Signal): void {
    try {
      this.#child.kill(signal);
    } catch {
      // It exited in the meantime.
    }
  }
}

/** The proxy's own values of {@link INHERITED_ENV}, as far as it may read them. */
function inheritedEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const variable of INHERITED_ENV) {
    if (Deno.permissions.querySync({ name: "env", variable }).state !== "granted") continue;
    const value = Deno.env.get(variable);
    if (value !== undefined) env[variable] = value;
  }
  return env;
}

/**
 * A loopback port that was free a moment ago (bind port 0, read it, close).
 * Requires `--allow-net=127.0.0.1`.
 */
function freeLoopbackPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}
