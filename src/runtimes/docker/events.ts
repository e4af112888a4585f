/**
 * A long-lived `/events` subscription that survives daemon restarts: it reconnects with
 * exponential backoff, logs when Docker becomes unreachable and when it is back, and reports
 * each gap so callers can reconcile state they may have missed.
 *
 * @module
 */

import { log } from "../../log.ts";
import type { DockerClient, Query } from "./client.ts";
import { jsonLines } from "./json_stream.ts";

/** One event as `/events` sends it. */
export interface DockerEvent {
  readonly Type: string;
  readonly Action: string;
  readonly Actor: { readonly ID: string; readonly Attributes: Record<string, string> };
  readonly timeNano: number;
}

/** What the subscriber is told. */
export interface EventHandlers {
  /** Called for each event. */
  onEvent(event: DockerEvent): void;
  /** Called when the stream broke, and again when it is back: events may have been missed. */
  onGap(): void;
}

/** Backoff bounds for reconnecting, in milliseconds. */
export interface Backoff {
  readonly minMs: number;
  readonly maxMs: number;
}

interface Attempt {
  promise: Promise<void>;
  resolve(): void;
  reject(error: unknown): void;
}

function attempt(): Attempt {
  const { promise, resolve, reject } = Promise.withResolvers<void>();
  promise.catch(() => {}); // Observed by connected() callers only when they ask.
  return { promise, resolve, reject };
}

/**
 * Keeps a filtered `/events` stream open until {@link DockerEvents.close}.
 *
 * Permissions: those of {@link DockerClient}.
 *
 * @example
 * ```ts
 * const events = new DockerEvents(docker, { type: ["container"] }, {
 *   onEvent: (e) => log("debug", "event", { action: e.Action }),
 *   onGap: () => reconcile(),
 * });
 * await events.connected(); // rejects with DockerUnavailableError while Docker is down
 * await events.close();
 * ```
 */
export class DockerEvents {
  #client: DockerClient;
  #filters: Query;
  #handlers: EventHandlers;
  #backoff: Backoff;
  #abort = new AbortController();
  #phase: "connecting" | "connected" | "waiting" = "connecting";
  #current: Attempt = attempt();
  #next: Attempt | null = null;
  #wake: (() => void) | null = null;
  #loop: Promise<void>;

  /** Starts subscribing at once; `filters` is the `/events` filter object. */
  constructor(
    client: DockerClient,
    filters: Query,
    handlers: EventHandlers,
    backoff: Backoff = { minMs: 500, maxMs: 30_000 },
  ) {
    this.#client = client;
    this.#filters = filters;
    this.#handlers = handlers;
    this.#backoff = backoff;
    this.#loop = this.#run();
  }

  /**
   * Resolves once the stream is live. While Docker is unreachable, this retries at once
   * (instead of waiting out the backoff) and rejects with that attempt's error.
   */
  connected(): Promise<void> {
    if (this.#phase === "connected") return Promise.resolve();
    if (this.#phase === "connecting") return this.#current.promise;
    this.#next ??= attempt();
    this.#wake?.();
    return this.#next.promise;
  }

  /** Stops the subscription and waits for it to wind down. */
  async close(): Promise<void> {
    this.#abort.abort();
    this.#wake?.();
    await this.#loop;
  }

  async #run(): Promise<void> {
    const signal = this.#abort.signal;
    let delay = this.#backoff.minMs;
    let lost = false;
    while (!signal.aborted) {
      try {
        const res = await this.#client.request("GET", "/events", {
          query: { filters: this.#filters },
          signal,
        });
        this.#phase = "connected";
        this.#current.resolve();
        delay = this.#backoff.minMs;
        if (lost) {
          log("info", "docker is reachable again", { socket: this.#client.socket });
          lost = false;
          this.#handlers.onGap();
        }
        for await (const event of jsonLines(res.body!)) {
          this.#handlers.onEvent(event as DockerEvent);
        }
        throw new Error("Docker closed the event stream");
      } catch (error) {
        if (signal.aborted) break;
        this.#current.reject(error);
        if (this.#phase === "connected") this.#handlers.onGap();
        log(lost ? "debug" : "warn", "docker is unreachable, retrying", {
          socket: this.#client.socket,
          error: (error as Error).message,
          retry_in_ms: delay,
        });
        lost = true;
        this.#phase = "waiting";
        await this.#sleep(delay);
        delay = Math.min(delay * 2, this.#backoff.maxMs);
        this.#current = this.#next ?? attempt();
        this.#next = null;
        this.#phase = "connecting";
      }
    }
    const closed = new Error("Docker event stream closed");
    this.#current.reject(closed);
    this.#next?.reject(closed);
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = () => {
        this.#wake = null;
        done();
      };
    });
  }
}
