/**
 * What the request path holds while it uses a service: the contract between the proxy
 * handler and the service manager.
 *
 * @module
 */

import type { ServiceConfig } from "../config/schema.ts";

/** A ready upstream, held until the response body or socket is finished. */
export interface Lease {
  /** Base URL of the ready upstream, e.g. `http://127.0.0.1:41234`. */
  readonly upstream: URL;
  /** Milliseconds this request waited for a cold start, or null when the service was running. */
  readonly coldStartMs: number | null;
  /** Ends the lease; idempotent. The idle clock starts when a service's last lease ends. */
  release(): void;
}

/** The service manager as the request path sees it. */
export interface ServiceAcquirer {
  /**
   * Returns a lease on a ready upstream, starting the service single-flight if needed.
   * Rejects with a {@link ServiceUnavailableError} when the start fails or times out.
   */
  acquire(service: ServiceConfig, signal?: AbortSignal): Promise<Lease>;
  /**
   * Called when a lease's upstream refused a connection: the workload may have died a moment
   * ago. Resolves once the manager has checked, so that a following `acquire` starts it again
   * if it is gone. Optional for stand-ins.
   */
  recheck?(service: ServiceConfig): Promise<void>;
}

/** A service could not be made ready: answered with 503 and `Retry-After`. */
export class ServiceUnavailableError extends Error {
  /** Seconds a client should wait before retrying. */
  readonly retryAfter: number;
  /** Name of the service that failed. */
  readonly service: string;

  /** @param service name of the service; @param message fit for a 503 body (no secrets). */
  constructor(service: string, message: string, retryAfter = 5, options?: ErrorOptions) {
    super(message, options);
    this.name = "ServiceUnavailableError";
    this.service = service;
    this.retryAfter = retryAfter;
  }
}
