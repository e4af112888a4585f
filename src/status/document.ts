/**
 * The `/proxy/status` document: what the proxy reports and `proxy-status` reads.
 *
 * @module
 */

/** Lifecycle states a service can be in. */
export type ServiceState = "stopped" | "starting" | "running" | "stopping" | "failed";

/** One service in the status document. */
export interface ServiceStatus {
  /** Service name from the config. */
  readonly name: string;
  /** Route prefix. */
  readonly path: string;
  /** `process`, `docker` or `url`. */
  readonly runtime: string;
  /** Current lifecycle state. */
  readonly state: ServiceState;
  /** Upstream base URL while known, else null. */
  readonly upstream: string | null;
  /** Last request (ISO 8601), or null when never used. */
  readonly last_access: string | null;
  /** Requests and sockets in flight. */
  readonly in_flight: number;
  /** How many times this proxy started it. */
  readonly starts: number;
  /** Duration of the last start in ms, or null. */
  readonly last_start_ms: number | null;
  /** Last start or runtime error (no secrets), or null. */
  readonly last_error: string | null;
}

/** The certificate being served, when TLS is on. */
export interface CertificateStatus {
  /** DNS names the certificate covers. */
  readonly names: readonly string[];
  /** Expiry (ISO 8601). */
  readonly not_after: string;
  /** Serial number (hex). */
  readonly serial: string;
  /** When renewal is next attempted (ISO 8601), or null when not managed by the proxy. */
  readonly next_renewal: string | null;
  /** Last renewal error, or null. */
  readonly last_error: string | null;
}

/** The whole status document. */
export interface StatusDocument {
  /** Proxy version. */
  readonly version: string;
  /** Seconds since the proxy started. */
  readonly uptime_s: number;
  /** Services in config order. */
  readonly services: readonly ServiceStatus[];
  /** The served certificate, or null without TLS. */
  readonly certificate: CertificateStatus | null;
}
