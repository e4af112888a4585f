/**
 * One running container as the service manager sees it: its upstream, an `exited` promise
 * settled from Docker events or inspection, HEALTHCHECK readiness, a log tail, and stop.
 *
 * @module
 */

import type { ExitInfo, Workload } from "../../services/runtime.ts";
import { log } from "../../log.ts";
import {
  type DockerClient,
  DockerConflictError,
  DockerNotFoundError,
  DockerUnavailableError,
} from "./client.ts";
import type { DockerEvent } from "./events.ts";
import { type ContainerInspect, rfc3339Nanos } from "./spec.ts";

/** Lines of output kept for error reports. */
const LOG_TAIL_LINES = 20;

/**
 * A container launched (or adopted) for a service.
 *
 * Permissions: those of {@link DockerClient}.
 *
 * @example
 * ```ts
 * const workload = new DockerWorkload(docker, info, upstream, { removeOnStop: false });
 * const exit = await workload.exited; // e.g. { code: 137 }
 * ```
 */
export class DockerWorkload implements Workload {
  /** Base URL of the container's HTTP server. */
  readonly upstream: URL;
  /** Settles once the container stopped, died, or was removed, or Docker went away. */
  readonly exited: Promise<ExitInfo>;
  /**
   * Docker-specific readiness, when the manager's own probe would not do: the HEALTHCHECK
   * status when the image defines one; an HTTP answer when `options.probeHttp`; never, for a
   * container that was not running any more (its `exited` ends the wait).
   */
  readonly ready?: (signal: AbortSignal) => Promise<boolean>;
  /** Container ID. */
  readonly id: string;
  /** Container name (the service name). */
  readonly name: string;

  #client: DockerClient;
  #tty: boolean;
  #startedAt: bigint;
  #removeOnStop: boolean;
  #settle: (info: ExitInfo) => void;
  #settled = false;
  #oom = false;
  #tail = "";

  /**
   * @param info the container's inspect after it was started
   * @param upstream where it answers
   * @param options.removeOnStop remove the container after {@link DockerWorkload.stop}
   * @param options.probeHttp without a HEALTHCHECK, ready once `HEAD /` gets any HTTP answer
   *   (for published ports: Docker's userland proxy accepts connections before the
   *   container listens, so a TCP connect proves nothing)
   */
  constructor(
    client: DockerClient,
    info: ContainerInspect,
    upstream: URL,
    options: { removeOnStop: boolean; probeHttp: boolean },
  ) {
    this.#client = client;
    this.id = info.Id;
    this.name = info.Name.replace(/^\//, "");
    this.upstream = upstream;
    this.#tty = info.Config.Tty;
    this.#startedAt = rfc3339Nanos(info.State.StartedAt);
    this.#removeOnStop = options.removeOnStop;
    const { promise, resolve } = Promise.withResolvers<ExitInfo>();
    this.exited = promise;
    this.#settle = resolve;
    if (!info.State.Running) this.ready = () => Promise.resolve(false);
    else if (info.State.Health !== undefined) this.ready = (signal) => this.#healthy(signal);
    else if (options.probeHttp) this.ready = (signal) => answersHttp(upstream, signal);
  }

  /** The last lines the container wrote, fetched when it exited. */
  logTail(): string {
    return this.#tail;
  }

  /**
   * Feeds a container event. Events older than this run of the container (e.g. the `die` of
   * the previous run arriving late) are ignored.
   */
  handleEvent(event: DockerEvent): void {
    if (BigInt(event.timeNano) < this.#startedAt) return;
    if (event.Action === "oom") this.#oom = true;
    else if (event.Action === "die") {
      const code = Number(event.Actor.Attributes.exitCode);
      void this.#exit({ code: Number.isNaN(code) ? null : code, ...this.#oomReason() });
    } else if (event.Action === "destroy") void this.#exit({ code: null, reason: "removed" });
  }

  /**
   * Re-reads the container's state (after an event gap or a stop) and, if it is not running
   * this run any more, settles `exited` before resolving.
   */
  async reconcile(): Promise<void> {
    if (this.#settled) {
      await this.exited;
      return;
    }
    try {
      const info = await this.#client.json<ContainerInspect>("GET", `/containers/${this.id}/json`);
      if (rfc3339Nanos(info.State.StartedAt) !== this.#startedAt) {
        await this.#exit({ code: null, reason: "restarted" });
      } else if (!info.State.Running) await this.exitFrom(info);
    } catch (error) {
      if (error instanceof DockerNotFoundError) await this.#exit({ code: null, reason: "removed" });
      else if (error instanceof DockerUnavailableError) {
        await this.#exit({ code: null, reason: "Docker daemon unreachable" });
      } else log("warn", "container inspect failed", { container: this.name, error: `${error}` });
    }
  }

  /** Settles from an inspect that shows the container not running. */
  exitFrom(info: ContainerInspect): Promise<void> {
    this.#oom ||= info.State.OOMKilled;
    return this.#exit({ code: info.State.ExitCode, ...this.#oomReason() });
  }

  #oomReason(): { reason?: string } {
    return this.#oom ? { reason: "OOMKilled" } : {};
  }

  /** Settles `exited` once, after reading the log tail; later calls wait for the same. */
  #exit(info: ExitInfo): Promise<void> {
    if (this.#settled) return this.exited.then(() => {});
    this.#settled = true;
    log("info", "container exited", { container: this.name, ...info });
    return this.#refreshTail().finally(() => this.#settle(info));
  }

  async #refreshTail(): Promise<void> {
    try {
      const frames = await this.#client.logs(this.id, LOG_TAIL_LINES, this.#tty);
      const decoder = new TextDecoder();
      const text = frames.map((f) => decoder.decode(f.data, { stream: true })).join("");
      this.#tail = text.split("\n").slice(-LOG_TAIL_LINES - 1).join("\n").trimEnd();
    } catch {
      // Removed or Docker gone: keep the tail we have.
    }
  }

  async #healthy(signal: AbortSignal): Promise<boolean> {
    const info = await this.#client.json<ContainerInspect>("GET", `/containers/${this.id}/json`, {
      signal,
    });
    return info.State.Health?.Status === "healthy";
  }

  /**
   * `POST /containers/{id}/stop` with the grace period in whole seconds (Docker sends SIGKILL
   * after it), then removes the container when `remove_on_stop` is set.
   */
  async stop(graceMs: number): Promise<void> {
    const t = Math.ceil(graceMs / 1000);
    try {
      await this.#client.json("POST", `/containers/${this.id}/stop`, { query: { t } });
    } catch (error) {
      if (!(error instanceof DockerNotFoundError)) throw error;
    }
    await this.reconcile(); // settles `exited`, log tail included, before any removal
    if (!this.#removeOnStop) return;
    try {
      await this.#client.json("DELETE", `/containers/${this.id}`, {
        query: { v: true, force: true },
      });
    } catch (error) {
      // Gone already, or another remover got there first.
      if (!(error instanceof DockerNotFoundError || error instanceof DockerConflictError)) {
        throw error;
      }
    }
  }
}

/** Whether `HEAD /` on `upstream` gets an HTTP answer, whatever its status. */
async function answersHttp(upstream: URL, signal: AbortSignal): Promise<boolean> {
  const response = await fetch(upstream, { method: "HEAD", redirect: "manual", signal });
  await response.body?.cancel();
  return true;
}
