/**
 * The config hash stored on a container: a container created from a different config is
 * recreated rather than started stale.
 *
 * @module
 */

import type { ServiceConfig } from "../../config/schema.ts";
import { binds, type ContainerSettings } from "./spec.ts";

/**
 * SHA-256 (hex) of everything that shapes a service's container: image, environment,
 * volumes (resolved), memory and CPU limits, ports, network and connect mode.
 *
 * @example
 * ```ts
 * const hash = await configHash(service, config.global, config.source);
 * if (info.Config.Labels?.[LABEL_HASH] !== hash) await recreate();
 * ```
 */
export async function configHash(
  service: ServiceConfig,
  settings: ContainerSettings,
  source: string,
): Promise<string> {
  const relevant = {
    image: service.image,
    environment: Object.entries(service.environment).sort(([a], [b]) => a < b ? -1 : 1),
    volumes: binds(service.volumes, source).sort(),
    mem_limit: service.mem_limit,
    cpus: service.cpus,
    internal_port: service.internal_port,
    host_port: service.host_port,
    network: settings.docker_network,
    connect_mode: settings.connect_mode,
  };
  const bytes = new TextEncoder().encode(JSON.stringify(relevant));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}
