/**
 * Renders a status document as the table `proxy-status` prints.
 *
 * @module
 */

import type { StatusDocument } from "./document.ts";

/**
 * Says how long ago an ISO 8601 time was, e.g. `5s ago`, `3m ago`, `2h ago`, `never`.
 *
 * @example
 * ```ts
 * relativeTime(new Date(Date.now() - 90_000).toISOString()); // "1m ago"
 * ```
 */
export function relativeTime(iso: string | null, now: number = Date.now()): string {
  if (iso === null) return "never";
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (seconds < 60) return `${seconds}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h ago`;
  return `${Math.floor(seconds / 86400)}d ago`;
}

/** Renders the services as an aligned text table, with a header line about the proxy. */
export function renderStatusTable(doc: StatusDocument, now: number = Date.now()): string {
  const header = [
    "NAME",
    "PATH",
    "STATE",
    "UPSTREAM",
    "LAST ACCESS",
    "IN FLIGHT",
    "STARTS",
    "LAST ERROR",
  ];
  const rows = doc.services.map((s) => [
    s.name,
    s.path,
    s.state,
    s.upstream ?? "-",
    relativeTime(s.last_access, now),
    String(s.in_flight),
    String(s.starts),
    s.last_error ? s.last_error.split("\n")[0].slice(0, 60) : "-",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd();
  const lines = [
    `nodetool-proxy ${doc.version}, up ${
      Math.round(doc.uptime_s)
    }s, ${doc.services.length} services`,
  ];
  if (doc.certificate) {
    lines.push(
      `certificate: ${doc.certificate.names.join(", ")}, expires ${doc.certificate.not_after}` +
        (doc.certificate.next_renewal ? `, renews ${doc.certificate.next_renewal}` : ""),
    );
  }
  lines.push("", line(header), ...rows.map(line));
  return lines.join("\n");
}
