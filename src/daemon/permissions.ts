/**
 * The narrowest Deno permission flags that run the proxy for a given configuration.
 *
 * `proxy-daemon start` launches the detached proxy with them, and the README and Dockerfile
 * explain each one. Deriving them from the config keeps every deployment scoped to what its
 * config actually uses.
 *
 * @module
 */

import { dirname } from "node:path";
import type { ProxyConfig } from "../config/schema.ts";

/** Extra paths the launched process needs beyond the config's own. */
export interface PermissionExtras {
  /** Files the daemon writes besides certificates (pid file, log file). */
  readonly writable?: readonly string[];
}

function socketPath(dockerHost: string): string | null {
  return dockerHost.startsWith("unix://") ? dockerHost.slice("unix://".length) : null;
}

/**
 * Returns `--allow-*` flags for `main.ts proxy`/`proxy-daemon` with this config: listeners,
 * loopback upstreams, `url:` hosts, the Docker socket and container names, the ACME server;
 * reads of the config, webroot, certificates and ACME storage; writes of ACME storage;
 * `--allow-run` for `command:` programs (and certbot); `--allow-env` (a config may name any
 * variable through `${VAR}`).
 *
 * @example
 * ```ts
 * const flags = permissionFlags(config);
 * // ["--allow-net=0.0.0.0,127.0.0.1,localhost", "--allow-read=/etc/proxy/proxy.yaml,…", …]
 * ```
 */
export function permissionFlags(config: ProxyConfig, extras: PermissionExtras = {}): string[] {
  const g = config.global;
  const net = new Set([g.listen_host, "127.0.0.1", "localhost"]);
  const read = new Set([config.source, dirname(config.source), g.acme_webroot]);
  const write = new Set(extras.writable ?? []);
  const run = new Set<string>();
  for (const service of config.services) {
    if (service.url !== null) net.add(new URL(service.url).host);
    if (service.command !== null) run.add(service.command[0]);
    if (service.image !== null) {
      const socket = socketPath(g.docker_host);
      if (socket) {
        net.add(`unix:${socket}`);
        read.add(socket);
        write.add(socket);
      } else net.add(new URL(g.docker_host.replace(/^tcp:/, "http:")).host);
      if (g.connect_mode === "docker_dns") net.add(service.name);
    }
  }
  // The folders too: the daemon watches them to pick up replaced files (Deno.watchFs).
  for (const file of [g.tls_certfile, g.tls_keyfile]) if (file) read.add(file).add(dirname(file));
  if (g.acme.enabled) {
    net.add(new URL(g.acme.directory_url).host);
    read.add(g.acme.storage_dir);
    write.add(g.acme.storage_dir);
    if (g.acme.ca_bundle) read.add(g.acme.ca_bundle);
  }
  if (g.auto_certbot) {
    run.add("certbot");
    read.add("/etc/letsencrypt");
  }
  for (const path of write) read.add(path);
  const flags = [`--allow-net=${[...net].join(",")}`, `--allow-read=${[...read].join(",")}`];
  if (write.size) flags.push(`--allow-write=${[...write].join(",")}`);
  if (run.size) flags.push(`--allow-run=${[...run].join(",")}`);
  flags.push("--allow-env");
  return flags;
}
