/**
 * The `/proxy/status` document: what the proxy reports and `proxy-status` reads.
 *
 * @module
 */

import type { ServiceStatus } from "../services/manager.ts";

export type { ServiceState, ServiceStatus } from "../services/manager.ts";

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
