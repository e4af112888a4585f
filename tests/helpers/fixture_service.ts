/**
 * Services for lifecycle tests that run `tests/fixtures/http_app.ts` as a real child process.
 *
 * Tests using them need `--allow-net=127.0.0.1 --allow-env --allow-run=deno,ps --allow-read=.`.
 *
 * @module
 */

import type { ServiceConfig } from "../../src/config/schema.ts";
import type { Runtime, Workload } from "../../src/services/runtime.ts";

/**
 * The argv that runs `tests/fixtures/<app>` with loopback networking, `PORT` and `HOST`, the
 * extra `permissions`, and then `flags`.
 */
export function fixtureAppCommand(
  app: string,
  permissions: readonly string[],
  flags: readonly string[],
): string[] {
  return [
    "deno",
    "run",
    "--quiet",
    "--allow-net=127.0.0.1",
    "--allow-env=PORT,HOST",
    ...permissions,
    new URL(`../fixtures/${app}`, import.meta.url).pathname,
    ...flags,
  ];
}

/** The argv that runs the fixture app with `flags` (e.g. `--delay=200`, `--crash-on-start`). */
export function fixtureCommand(...flags: string[]): string[] {
  return fixtureAppCommand("http_app.ts", [], flags);
}

/**
 * A fully-resolved service: a `process` service running the fixture unless `overrides` say
 * otherwise.
 */
export function testService(overrides: Partial<ServiceConfig> = {}): ServiceConfig {
  return {
    name: "app",
    path: "/app",
    image: null,
    command: fixtureCommand(),
    url: null,
    internal_port: 8000,
    host_port: null,
    mem_limit: null,
    cpus: null,
    environment: {},
    volumes: {},
    auth_token: null,
    health_path: null,
    startup_timeout: 20,
    idle_timeout: 60,
    response_timeout: 60,
    strip_prefix: true,
    public: false,
    remove_on_stop: false,
    runtime: "process",
    ...overrides,
  };
}

/** Wraps a runtime and counts its starts. */
export class CountingRuntime implements Runtime {
  /** Same kind as the wrapped runtime. */
  readonly kind: string;
  /** Calls to `start` so far. */
  starts = 0;
  /** Every workload started, in order. */
  readonly workloads: Workload[] = [];
  readonly #inner: Runtime;

  /** @param inner the runtime doing the work. */
  constructor(inner: Runtime) {
    this.#inner = inner;
    this.kind = inner.kind;
  }

  /** Counts, then delegates. */
  async start(service: ServiceConfig, signal: AbortSignal): Promise<Workload> {
    this.starts++;
    const workload = await this.#inner.start(service, signal);
    this.workloads.push(workload);
    return workload;
  }
}

/** GETs `path` on an upstream and returns the body text. */
export async function getText(upstream: URL, path: string): Promise<string> {
  const response = await fetch(new URL(path, upstream));
  return await response.text();
}

/** Runs `ps <args>` and returns its stdout (empty when it lists nothing). Requires `--allow-run=ps`. */
export async function ps(args: readonly string[]): Promise<string> {
  const { stdout } = await new Deno.Command("ps", {
    args: [...args],
    stdout: "piped",
    stderr: "null",
  }).output();
  return new TextDecoder().decode(stdout);
}

/**
 * Whether a process is gone: `ps` does not list it, or only as a zombie (the sandbox's init
 * may not reap orphans). Requires `--allow-run=ps`.
 */
export async function processGone(pid: number): Promise<boolean> {
  const state = (await ps(["-o", "stat=", "-p", String(pid)])).trim();
  return state === "" || state.startsWith("Z");
}

/** Polls `check` every 20 ms until it is true; throws after `timeoutMs`. */
export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
