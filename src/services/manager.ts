/**
 * The service lifecycle: the one place that knows each service's state. It starts services
 * single-flight on demand, waits for readiness, counts what is in flight and stops services
 * that have been idle for their `idle_timeout`.
 *
 * @module
 */

import type { ServiceConfig } from "../config/schema.ts";
import { log } from "../log.ts";
import { type Lease, type ServiceAcquirer, ServiceUnavailableError } from "./lease.ts";
import { waitUntilReady } from "./readiness.ts";
import type { ExitInfo, Runtime, Workload } from "./runtime.ts";

/** Where a service is in its lifecycle. `url` services are always `running`. */
export type ServiceState = "stopped" | "starting" | "running" | "stopping" | "failed";

/** One service as `/proxy/status` reports it. Holds no secrets. */
export interface ServiceStatus {
  /** Service name. */
  readonly name: string;
  /** Route prefix. */
  readonly path: string;
  /** Which runtime runs it. */
  readonly runtime: ServiceConfig["runtime"];
  /** Lifecycle state. */
  readonly state: ServiceState;
  /** Upstream base URL (credentials removed), or null when nothing runs. */
  readonly upstream: string | null;
  /** When a request last began or ended (ISO 8601), or null if never. */
  readonly last_access: string | null;
  /** Requests and sockets holding a lease now. */
  readonly in_flight: number;
  /** Starts attempted by this proxy. */
  readonly starts: number;
  /** Times the service exited on its own while running. */
  readonly crashes: number;
  /** Duration of the last successful start (launch to ready), in ms. */
  readonly last_start_ms: number | null;
  /** Why the last start failed or the service last exited, or null. */
  readonly last_error: string | null;
}

/** Runtimes by the service kind they run; `url` services need none. */
export type Runtimes = Readonly<Partial<Record<"docker" | "process", Runtime>>>;

/** Tuning for {@link ServiceManager}. */
export interface ServiceManagerOptions {
  /** Grace between the polite stop and the forced kill for idle stops and failed starts. Default 10 000 ms. */
  readonly stopGraceMs?: number;
}

/**
 * Starts services on demand and stops idle ones.
 *
 * Permissions: whatever its runtimes need, plus `--allow-net` to the upstreams for readiness
 * probes.
 *
 * @example
 * ```ts
 * const manager = new ServiceManager(config.services, { process: new ProcessRuntime() });
 * await manager.adopt();
 * const lease = await manager.acquire(service, request.signal);
 * try {
 *   // forward to lease.upstream …
 * } finally {
 *   lease.release();
 * }
 * await manager.shutdown(10_000);
 * ```
 */
export class ServiceManager implements ServiceAcquirer {
  #slots = new Map<string, Slot>();
  readonly #runtimeMap: Runtimes;
  readonly #runtimes: Runtime[];
  readonly #stopGraceMs: number;
  #closing = false;

  /**
   * @param services the fully-resolved services to manage.
   * @param runtimes the runtime for each kind in use; a service whose runtime is missing
   *   answers 503 until one is configured.
   * @param options stop grace.
   */
  constructor(
    services: readonly ServiceConfig[],
    runtimes: Runtimes,
    options: ServiceManagerOptions = {},
  ) {
    this.#stopGraceMs = options.stopGraceMs ?? 10_000;
    this.#runtimeMap = runtimes;
    this.#runtimes = [...new Set(Object.values(runtimes))];
    for (const service of services) {
      const runtime = service.runtime === "url" ? null : this.#runtimeFor(service);
      const slot = new Slot(service, runtime, (idle) => void this.#stop(idle, "idle"));
      this.#slots.set(service.name, slot);
    }
  }

  #runtimeFor(service: ServiceConfig): Runtime | null {
    const runtime = this.#runtimeMap[service.runtime as "docker" | "process"] ?? null;
    if (runtime === null) {
      log("warn", "no runtime for service", { service: service.name, runtime: service.runtime });
    }
    return runtime;
  }

  /**
   * Returns a lease on a ready upstream. A running service answers at once; a stopped or
   * failed one is started (one start shared by all concurrent callers); one that is
   * stopping is started again once stopped. Waits at most the service's `startup_timeout`.
   *
   * Aborting `signal` (the client left) rejects this wait with `signal.reason`; the start
   * itself goes on for the other callers, and an unused service is reaped when idle.
   *
   * @throws {ServiceUnavailableError} when the start fails or times out, or on shutdown.
   * @throws {RangeError} for a service this manager was not given.
   */
  acquire(service: ServiceConfig, signal?: AbortSignal): Promise<Lease> {
    const slot = this.#slots.get(service.name);
    if (slot?.state === "running") return Promise.resolve(slot.lease(null));
    return this.#acquireSlow(service.name, slot, signal);
  }

  async #acquireSlow(name: string, slot: Slot | undefined, signal?: AbortSignal): Promise<Lease> {
    if (slot === undefined) throw new RangeError(`Unknown service ${JSON.stringify(name)}`);
    const began = performance.now();
    const deadline = began + slot.service.startup_timeout * 1000;
    while (true) {
      if (this.#closing) {
        throw new ServiceUnavailableError(name, `Service "${name}" is unavailable: shutting down`);
      }
      switch (slot.state) {
        case "running":
          return slot.lease(Math.round(performance.now() - began));
        case "stopping":
          await waitBounded(slot, slot.stopping!, deadline, signal);
          break;
        default: {
          const start = slot.state === "starting" ? slot.starting! : this.#start(slot);
          const failure = await waitBounded(slot, start, deadline, signal);
          if (failure !== null) throw failure;
        }
      }
    }
  }

  /**
   * Re-checks a running service whose upstream refused a connection: when its workload turns
   * out to be gone, the slot is stopped (a crash, counted and logged) before this resolves, so
   * the next `acquire` starts it again.
   */
  async recheck(service: ServiceConfig): Promise<void> {
    const slot = this.#slots.get(service.name);
    const workload = slot?.workload;
    if (slot?.state !== "running" || !workload) return;
    // reconcile() settles `exited` before it resolves, and the crash bookkeeping registered
    // on `exited` in #running runs before this continuation.
    await workload.reconcile?.();
  }

  /**
   * Takes over workloads that runtimes report as already running (e.g. containers of an
   * earlier proxy): they become `running` and their idle clock starts now.
   */
  async adopt(): Promise<void> {
    await Promise.all(this.#runtimes.map(async (runtime) => {
      if (!runtime.adopt) return;
      const services = [...this.#slots.values()]
        .filter((slot) => slot.runtime === runtime)
        .map((slot) => slot.service);
      let found: Map<string, Workload>;
      try {
        found = await runtime.adopt(services);
      } catch (error) {
        log("warn", "adopt failed", { runtime: runtime.kind, error: messageOf(error) });
        return;
      }
      for (const [name, workload] of found) {
        const slot = this.#slots.get(name);
        if (slot?.runtime !== runtime || slot.state !== "stopped") {
          log("warn", "adopted workload not wanted, stopping it", { service: name });
          await workload.stop(this.#stopGraceMs);
          continue;
        }
        this.#running(slot, workload);
        log("info", "service adopted", { service: name, upstream: displayUrl(workload.upstream) });
      }
    }));
  }

  /**
   * Applies a reloaded service list without dropping work: unchanged services keep running;
   * added ones start on demand; removed or changed ones are stopped once their in-flight
   * requests and sockets have finished. A changed service's new version starts only after
   * the old one has stopped (they share a name, and for Docker a container).
   */
  reconfigure(services: readonly ServiceConfig[]): void {
    const old = this.#slots;
    const next = new Map<string, Slot>();
    for (const service of services) {
      const previous = old.get(service.name);
      if (previous && sameService(previous.service, service)) {
        next.set(service.name, previous);
        old.delete(service.name);
        continue;
      }
      const runtime = service.runtime === "url" ? null : this.#runtimeFor(service);
      const slot = new Slot(service, runtime, (idle) => void this.#stop(idle, "idle"));
      if (previous) {
        slot.predecessor = this.#retire(previous);
        old.delete(service.name);
      }
      next.set(service.name, slot);
    }
    for (const removed of old.values()) void this.#retire(removed);
    this.#slots = next;
  }

  /** Stops a slot that left the configuration once nothing holds a lease on it. */
  async #retire(slot: Slot): Promise<void> {
    slot.clearIdle();
    slot.retired = true;
    if (slot.starting) {
      slot.startAbort?.abort(new Error("was abandoned: removed by a reload"));
      await slot.starting;
    }
    await slot.drained();
    await this.#stop(slot, "reload");
  }

  /** A snapshot of every service, in configuration order. */
  status(): ServiceStatus[] {
    return [...this.#slots.values()].map((slot) => ({
      name: slot.service.name,
      path: slot.service.path,
      runtime: slot.service.runtime,
      state: slot.state,
      upstream: slot.upstream === null ? null : displayUrl(slot.upstream),
      last_access: slot.lastAccess === null
        ? null
        : new Date(performance.timeOrigin + slot.lastAccess).toISOString(),
      in_flight: slot.inFlight,
      starts: slot.starts,
      crashes: slot.crashes,
      last_start_ms: slot.lastStartMs,
      last_error: slot.lastError,
    }));
  }

  /**
   * Stops every service this proxy started or adopted, in parallel (starts in progress are
   * abandoned), then closes the runtimes. Later acquires fail with 503. Call it after the
   * listeners have drained.
   *
   * @param graceMs time each workload gets between the polite stop and the forced kill.
   */
  async shutdown(graceMs: number): Promise<void> {
    this.#closing = true;
    await Promise.all([...this.#slots.values()].map(async (slot) => {
      slot.clearIdle();
      if (slot.starting) {
        slot.startAbort?.abort(new Error("was abandoned: shutting down"));
        await slot.starting;
      }
      if (slot.stopping) await slot.stopping;
      if (slot.workload !== null) await this.#stop(slot, "shutdown", "stopped", graceMs);
    }));
    await Promise.all(this.#runtimes.map((runtime) => runtime.close?.()));
  }

  /** Begins a start; the promise (also `slot.starting`) settles with its failure, or null. */
  #start(slot: Slot): Promise<ServiceUnavailableError | null> {
    const abort = new AbortController();
    slot.state = "starting";
    slot.starts++;
    slot.startAbort = abort;
    const starting = this.#launch(slot, abort).then((failure) => {
      if (slot.startAbort === abort) {
        slot.starting = null;
        slot.startAbort = null;
      }
      return failure;
    });
    slot.starting = starting;
    return starting;
  }

  async #launch(slot: Slot, abort: AbortController): Promise<ServiceUnavailableError | null> {
    const { service, runtime } = slot;
    const began = performance.now();
    const timer = setTimeout(
      () => abort.abort(new Error(`did not become ready within ${service.startup_timeout} s`)),
      service.startup_timeout * 1000,
    );
    log("info", "service starting", { service: service.name, runtime: service.runtime });
    try {
      if (runtime === null) throw new Error(`no ${service.runtime} runtime is configured`);
      await slot.predecessor;
      const workload = await launch(runtime, service, abort.signal);
      slot.workload = workload;
      slot.upstream = workload.upstream;
      await waitUntilReady(
        workload,
        service,
        AbortSignal.any([abort.signal, exitSignal(workload)]),
      );
      slot.lastStartMs = Math.round(performance.now() - began);
      this.#running(slot, workload);
      log("info", "service ready", { service: service.name, ms: slot.lastStartMs });
      return null;
    } catch (error) {
      return this.#failed(
        slot,
        abort.signal.aborted ? abort.signal.reason : error,
        abort.signal.aborted,
      );
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Records a failed start, stops what was launched, and builds the 503 for waiters.
   * `ours` marks reasons the manager worded itself (timeout, shutdown).
   */
  #failed(slot: Slot, reason: unknown, ours: boolean): ServiceUnavailableError {
    const name = slot.service.name;
    const what = ours || reason instanceof ExitedDuringStart
      ? messageOf(reason)
      : `could not be started: ${messageOf(reason)}`;
    slot.lastError = what;
    log("warn", "service start failed", { service: name, error: what });
    void this.#stop(slot, "failed start", "failed");
    const tail = reason instanceof ExitedDuringStart && reason.tail !== ""
      ? `. Last output:\n${reason.tail}`
      : "";
    return new ServiceUnavailableError(name, `Service "${name}" ${what}${tail}`, 5, {
      cause: reason,
    });
  }

  /** Marks a slot running with this workload, starts its idle clock, watches for crashes. */
  #running(slot: Slot, workload: Workload): void {
    slot.workload = workload;
    slot.upstream = workload.upstream;
    slot.state = "running";
    slot.lastError = null;
    slot.startIdleClock();
    void workload.exited.then((info) => {
      if (slot.workload !== workload || slot.state !== "running") return;
      slot.workload = null;
      slot.upstream = null;
      slot.state = "stopped";
      slot.crashes++;
      slot.lastError = `exited with ${describeExit(info)}`;
      slot.clearIdle();
      log("warn", "service exited", {
        service: slot.service.name,
        code: info.code,
        signal: info.signal ?? null,
        reason: info.reason ?? null,
        in_flight: slot.inFlight,
      });
    });
  }

  /** Stops the slot's workload (once, however many callers); ends in `finalState`. */
  #stop(
    slot: Slot,
    reason: "idle" | "failed start" | "shutdown" | "reload",
    finalState: "stopped" | "failed" = "stopped",
    graceMs = this.#stopGraceMs,
  ): Promise<void> {
    slot.clearIdle();
    if (slot.stopping) return slot.stopping;
    const workload = slot.workload;
    if (workload === null) {
      slot.state = finalState;
      return Promise.resolve();
    }
    const began = performance.now();
    slot.state = "stopping";
    slot.stopping = (async () => {
      try {
        await workload.stop(graceMs);
      } catch (error) {
        log("error", "service stop failed", {
          service: slot.service.name,
          error: messageOf(error),
        });
      }
      const exit = await Promise.race([workload.exited, Promise.resolve(null)]);
      slot.workload = null;
      slot.upstream = null;
      slot.stopping = null;
      slot.state = finalState;
      log("info", "service stopped", {
        service: slot.service.name,
        reason,
        ms: Math.round(performance.now() - began),
        code: exit?.code ?? null,
        signal: exit?.signal ?? null,
      });
    })();
    return slot.stopping;
  }
}

/** Per-service state; the idle clock lives here so a release needs no manager lookup. */
class Slot {
  readonly service: ServiceConfig;
  readonly runtime: Runtime | null;
  state: ServiceState;
  workload: Workload | null = null;
  upstream: URL | null;
  inFlight = 0;
  starts = 0;
  crashes = 0;
  lastStartMs: number | null = null;
  lastError: string | null = null;
  /** `performance.now()` of the last lease begun or ended. */
  lastAccess: number | null = null;
  starting: Promise<ServiceUnavailableError | null> | null = null;
  startAbort: AbortController | null = null;
  stopping: Promise<void> | null = null;
  /** The old version's stop, which must finish before this version starts (reload). */
  predecessor: Promise<void> = Promise.resolve();
  /** Set when a reload removed or replaced this service: no new idle clock. */
  retired = false;
  #onDrained: (() => void) | null = null;
  readonly #idleMs: number;
  readonly #onIdle: (slot: Slot) => void;
  #idleSince = 0;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(service: ServiceConfig, runtime: Runtime | null, onIdle: (slot: Slot) => void) {
    this.service = service;
    this.runtime = runtime;
    this.#onIdle = onIdle;
    this.#idleMs = service.idle_timeout * 1000;
    const always = service.runtime === "url";
    this.state = always ? "running" : "stopped";
    this.upstream = always ? new URL(service.url!) : null;
  }

  lease(coldStartMs: number | null): Lease {
    this.inFlight++;
    this.lastAccess = performance.now();
    return new SlotLease(this, this.upstream!, coldStartMs);
  }

  release(): void {
    this.inFlight--;
    this.lastAccess = performance.now();
    if (this.inFlight > 0) return;
    if (this.retired) this.#onDrained?.();
    else this.startIdleClock();
  }

  /** Resolves once no lease is held. */
  drained(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.#onDrained = resolve;
    });
  }

  /** Idle from now; the service stops `idle_timeout` later unless a lease intervenes. */
  startIdleClock(): void {
    if (this.retired) return;
    this.#idleSince = performance.now();
    this.#armIdle(this.#idleMs);
  }

  clearIdle(): void {
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
  }

  /** One timer per service: re-armed for the remainder when a lease came and went meanwhile. */
  #armIdle(ms: number): void {
    if (this.#idleTimer !== undefined || this.service.runtime === "url") return;
    const timer = setTimeout(() => {
      this.#idleTimer = undefined;
      if (this.state !== "running" || this.inFlight > 0) return;
      const left = this.#idleSince + this.#idleMs - performance.now();
      if (left > 0) this.#armIdle(left);
      else this.#onIdle(this);
    }, ms);
    Deno.unrefTimer(timer);
    this.#idleTimer = timer;
  }
}

/** A lease whose release counts once. */
class SlotLease implements Lease {
  readonly upstream: URL;
  readonly coldStartMs: number | null;
  #slot: Slot | null;

  constructor(slot: Slot, upstream: URL, coldStartMs: number | null) {
    this.#slot = slot;
    this.upstream = upstream;
    this.coldStartMs = coldStartMs;
  }

  release(): void {
    const slot = this.#slot;
    if (slot === null) return;
    this.#slot = null;
    slot.release();
  }
}

/** A workload exited before it became ready. */
class ExitedDuringStart extends Error {
  readonly info: ExitInfo;
  readonly tail: string;

  constructor(info: ExitInfo, tail: string) {
    super(`exited with ${describeExit(info)} while starting`);
    this.name = "ExitedDuringStart";
    this.info = info;
    this.tail = tail;
  }
}

/** Aborts once the workload exits, with an {@link ExitedDuringStart} reason. */
function exitSignal(workload: Workload): AbortSignal {
  const controller = new AbortController();
  void workload.exited.then((info) => {
    controller.abort(new ExitedDuringStart(info, workload.logTail()));
  });
  return controller.signal;
}

/**
 * `runtime.start`, bounded by `signal` even if the runtime ignores it; a workload that
 * arrives after the abort is stopped.
 */
async function launch(runtime: Runtime, service: ServiceConfig, signal: AbortSignal) {
  const starting = runtime.start(service, signal);
  let onAbort = () => {};
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    return await Promise.race([starting, aborted]);
  } catch (error) {
    starting.then((late) => late.stop(0), () => {});
    throw error;
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

/**
 * Waits for `promise` (which never rejects), at most until `deadline` (a
 * `performance.now()` time) and until `signal` aborts.
 */
function waitBounded<T>(
  slot: Slot,
  promise: Promise<T>,
  deadline: number,
  signal: AbortSignal | undefined,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const name = slot.service.name;
    const timeout = () =>
      new ServiceUnavailableError(
        name,
        `Service "${name}" did not become ready within ${slot.service.startup_timeout} s`,
      );
    if (signal?.aborted) return reject(signal.reason);
    const left = deadline - performance.now();
    if (left <= 0) return reject(timeout());
    const finish = (settle: () => void) => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      settle();
    };
    const onAbort = () => finish(() => reject(signal!.reason));
    const timer = setTimeout(() => finish(() => reject(timeout())), left);
    signal?.addEventListener("abort", onAbort, { once: true });
    void promise.then((value) => finish(() => resolve(value)));
  });
}

/** `code 3`, `signal SIGKILL`, `code 137 (OOMKilled)`… */
function describeExit(info: ExitInfo): string {
  const what = info.code !== null
    ? `code ${info.code}`
    : info.signal
    ? `signal ${info.signal}`
    : "unknown status";
  return info.reason ? `${what} (${info.reason})` : what;
}

/** A URL for display: user name and password removed. */
function displayUrl(url: URL): string {
  if (url.username === "" && url.password === "") return url.href;
  const clean = new URL(url.href);
  clean.username = "";
  clean.password = "";
  return clean.href;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Whether a reload left a service's configuration unchanged. */
function sameService(a: ServiceConfig, b: ServiceConfig): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
