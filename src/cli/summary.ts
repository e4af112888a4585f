/**
 * A short, secret-free description of a loaded configuration.
 *
 * @module
 */

import type { ProxyConfig, ServiceConfig } from "../config/schema.ts";

/** How TLS is provided, in words. */
export function tlsMode(config: ProxyConfig): string {
  const g = config.global;
  if (g.acme.enabled) return `built-in ACME (${g.acme.directory_url})`;
  if (g.auto_certbot) return "certbot (webroot)";
  if (g.tls_certfile) return `certificate files (${g.tls_certfile})`;
  return "none (plain HTTP)";
}

function target(service: ServiceConfig): string {
  if (service.image !== null) return `image ${service.image}`;
  if (service.command !== null) return `command ${service.command[0]}`;
  return `url ${service.url}`;
}

/**
 * Renders the summary `proxy-validate-config` prints: domain, TLS, listeners and one line
 * per service. Never includes tokens or environment values.
 */
export function summarize(config: ProxyConfig): string {
  const g = config.global;
  const lines = [
    `Configuration OK: ${config.source}`,
    `  domain:   ${g.domain}`,
    `  tls:      ${tlsMode(config)}`,
    `  listen:   http ${g.listen_host}:${g.listen_http}, https ${g.listen_host}:${g.listen_https}`,
    `  services: ${config.services.length}`,
  ];
  const width = Math.max(0, ...config.services.map((s) => s.path.length));
  for (const s of config.services) {
    const port = s.host_port === null ? "" : ` (host port ${s.host_port})`;
    const access = s.public ? ", public" : "";
    lines.push(`    ${s.path.padEnd(width)} → ${s.name}: ${target(s)}${port}${access}`);
  }
  return lines.join("\n");
}
