/**
 * Pure mapping between the proxy's service config and Docker objects: the container create
 * body, its labels, and the upstream address read back from an inspect. No I/O.
 *
 * @module
 */

import { dirname, isAbsolute, resolve } from "node:path";
import type { GlobalConfig, ServiceConfig } from "../../config/schema.ts";

/** Label marking containers (and networks) this proxy manages. */
export const LABEL_MANAGED = "com.nodetool.managed";
/** Label holding the service name of a managed container. */
export const LABEL_SERVICE = "com.nodetool.service";
/** Label holding the hash of the config a container was created from. */
export const LABEL_HASH = "com.nodetool.config-hash";

/** The settings of the proxy that shape a service's container. */
export type ContainerSettings = Pick<GlobalConfig, "docker_network" | "connect_mode">;

/** The parts of a container inspect this module reads. */
export interface ContainerInspect {
  Id: string;
  Name: string;
  Config: { Labels: Record<string, string> | null; Tty: boolean };
  State: {
    Running: boolean;
    ExitCode: number;
    OOMKilled: boolean;
    StartedAt: string;
    Health?: { Status: string };
  };
  NetworkSettings: {
    Ports: Record<string, { HostIp: string; HostPort: string }[] | null> | null;
  };
}

/**
 * Docker `Binds` for a service's volumes. Host paths that are relative (`./data`, `data/x`)
 * resolve against the config file's folder; a bare name (`data`) is a named volume, as with
 * `docker run -v`.
 *
 * @example
 * ```ts
 * binds({ "./models": { bind: "/models", mode: "ro" } }, "/etc/nodetool/proxy.yaml");
 * // ["/etc/nodetool/models:/models:ro"]
 * ```
 */
export function binds(volumes: ServiceConfig["volumes"], source: string): string[] {
  return Object.entries(volumes).map(([host, { bind, mode }]) => {
    const named = !isAbsolute(host) && !host.startsWith(".") && !host.includes("/");
    const path = named ? host : resolve(dirname(source), host);
    return `${path}:${bind}:${mode}`;
  });
}

/** The exposed port key of a service, e.g. `8000/tcp`. */
export function portKey(service: ServiceConfig): string {
  return `${service.internal_port}/tcp`;
}

/** Where a container is created: beside the service, what the spec is built from. */
export interface ContainerPlacement {
  readonly settings: ContainerSettings;
  /** The config file path; relative volume paths resolve against its folder. */
  readonly source: string;
  /** The config hash label value. */
  readonly hash: string;
  /** ID of the network to join (IDs stay unambiguous even if a name was created twice). */
  readonly networkId: string;
}

/**
 * The `POST /containers/create` body for a service.
 *
 * @example
 * ```ts
 * const body = containerSpec(service, { settings: config.global, source, hash, networkId });
 * await docker.json("POST", "/containers/create", { query: { name: service.name }, body });
 * ```
 */
export function containerSpec(
  service: ServiceConfig,
  { settings, source, hash, networkId }: ContainerPlacement,
): Record<string, unknown> {
  const port = portKey(service);
  return {
    Image: service.image,
    Env: Object.entries(service.environment).map(([key, value]) => `${key}=${value}`),
    Labels: { [LABEL_MANAGED]: "true", [LABEL_SERVICE]: service.name, [LABEL_HASH]: hash },
    ExposedPorts: { [port]: {} },
    HostConfig: {
      Binds: binds(service.volumes, source),
      Memory: service.mem_limit ?? 0,
      NanoCpus: service.cpus === null ? 0 : Math.round(service.cpus * 1e9),
      NetworkMode: networkId,
      RestartPolicy: { Name: "no" },
      PortBindings: settings.connect_mode === "host_port"
        ? { [port]: [{ HostIp: "127.0.0.1", HostPort: String(service.host_port ?? "") }] }
        : {},
    },
  };
}

/**
 * Where the proxy reaches a running container: `http://<name>:<internal_port>` on the Docker
 * network (`docker_dns`), or the loopback port Docker published (`host_port`, including an
 * auto-assigned one). A container that is not running publishes nothing: its address is
 * `http://<name>.invalid:<internal_port>` (RFC 6761), which nothing will answer.
 */
export function upstreamOf(
  service: ServiceConfig,
  settings: ContainerSettings,
  info: ContainerInspect,
): URL {
  if (settings.connect_mode === "docker_dns") {
    return new URL(`http://${service.name}:${service.internal_port}`);
  }
  if (!info.State.Running) {
    return new URL(`http://${service.name}.invalid:${service.internal_port}`);
  }
  const bindings = info.NetworkSettings.Ports?.[portKey(service)] ?? [];
  const binding = bindings.find((b) => b.HostIp === "127.0.0.1") ?? bindings[0];
  if (!binding?.HostPort) {
    throw new Error(
      `Container "${service.name}" publishes no host port for ${portKey(service)}`,
    );
  }
  return new URL(`http://127.0.0.1:${binding.HostPort}`);
}

/** An RFC 3339 time with up to nanosecond precision (as Docker writes them) in nanoseconds. */
export function rfc3339Nanos(text: string): bigint {
  const match = /^(.*?)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(text);
  const ms = match ? Date.parse(match[1] + match[3]) : NaN;
  if (!match || Number.isNaN(ms)) return 0n;
  return BigInt(ms) * 1_000_000n + BigInt((match[2] ?? "").padEnd(9, "0").slice(0, 9));
}
