/**
 * The seam between the service manager and the backends that run workloads.
 *
 * The manager owns state (stopped · starting · running · stopping · failed), single-flight
 * starts, readiness probing and idle reaping; a {@link Runtime} only knows how to launch,
 * observe and stop one workload. Runtimes never see HTTP requests.
 *
 * @module
 */

import type { ServiceConfig } from "../config/schema.ts";

/** How a workload ended. `code` is null when the runtime could not learn it. */
export interface ExitInfo {
  /** Process or container exit code, if known. */
  readonly code: number | null;
  /** Signal name for processes killed by a signal, if any. */
  readonly signal?: string | null;
  /** A short human reason, e.g. `"OOMKilled"` or `"removed"`. */
  readonly reason?: string;
}

/** A launched workload: where to reach it and how to watch and stop it. */
export interface Workload {
  /** Base URL of the upstream, e.g. `http://127.0.0.1:41234`. */
  readonly upstream: URL;
  /** Settles once the workload has exited (for whatever reason). Never rejects. */
  readonly exited: Promise<ExitInfo>;
  /**
   * Runtime-specific readiness, e.g. a Docker HEALTHCHECK. Resolves `true` when ready,
   * `false` when not yet; `undefined` means the manager probes with `health_path` or TCP.
   */
  readonly ready?: (signal: AbortSignal) => Promise<boolean>;
  /**
   * Re-checks with the runtime that the workload still runs, settling `exited` first when it
   * does not (e.g. a container killed a moment ago, before its event arrived). Optional: a
   * runtime that learns of exits at once (child processes) needs none.
   */
  reconcile?(): Promise<void>;
  /** The last lines of the workload's output, for error reports. */
  logTail(): string;
  /** Stops the workload: a polite signal, then a forced kill after `graceMs`. */
  stop(graceMs: number): Promise<void>;
}

/** A backend that launches workloads for services of one kind. */
export interface Runtime {
  /** Name shown in status output, e.g. `"process"` or `"docker"`. */
  readonly kind: string;
  /**
   * Launches (or adopts an already running instance of) the service. Resolves once the
   * workload is launched, not once it is ready. Rejects with an `Error` whose message is
   * fit for a 503 body when the workload cannot be launched.
   */
  start(service: ServiceConfig, signal: AbortSignal): Promise<Workload>;
  /** Workloads already running at startup (e.g. containers of an earlier proxy), by service name. */
  adopt?(services: readonly ServiceConfig[]): Promise<Map<string, Workload>>;
  /** Releases runtime resources (event streams, sockets). Does not stop workloads. */
  close?(): Promise<void>;
}
