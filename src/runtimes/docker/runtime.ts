/**
 * The Docker backend of the service manager: services with `image:` run as containers,
 * created, started, adopted and stopped through the Engine API.
 *
 * @module
 */

import type { ProxyConfig, ServiceConfig } from "../../config/schema.ts";
import type { Runtime, Workload } from "../../services/runtime.ts";
import { log } from "../../log.ts";
import {
  DockerClient,
  DockerConflictError,
  DockerNotFoundError,
  DockerUnavailableError,
} from "./client.ts";
import { DockerEvents } from "./events.ts";
import { configHash } from "./hash.ts";
import { pullImage } from "./images.ts";
import { ensureNetwork } from "./network.ts";
import {
  type ContainerInspect,
  type ContainerSettings,
  containerSpec,
  LABEL_HASH,
  LABEL_MANAGED,
  LABEL_SERVICE,
  upstreamOf,
} from "./spec.ts";
import { DockerWorkload } from "./workload.ts";

/** What {@link DockerRuntime} needs from the configuration. */
export type DockerRuntimeConfig = Pick<ProxyConfig, "source"> & {
  readonly global: ContainerSettings & Pick<ProxyConfig["global"], "docker_host">;
};

const MANAGED = `${LABEL_MANAGED}=true`;

/**
 * Runs services as Docker containers named after the service and labelled
 * `com.nodetool.managed=true`, `com.nodetool.service=<name>` and
 * `com.nodetool.config-hash=<sha256>`; a container from a different config is recreated.
 * One `/events` subscription (reconnected with backoff) settles each workload's `exited`.
 *
 * Permissions: `--allow-read=<socket> --allow-write=<socket> --allow-net=unix:<socket>`
 * for `global.docker_host` (default `/var/run/docker.sock`).
 *
 * @example
 * ```ts
 * const docker = new DockerRuntime(config);
 * const adopted = await docker.adopt(config.services.filter((s) => s.runtime === "docker"));
 * const workload = await docker.start(service, AbortSignal.timeout(60_000));
 * await fetch(workload.upstream);
 * await docker.close();
 * ```
 */
export class DockerRuntime implements Runtime {
  /** Shown in status output. */
  readonly kind = "docker";
  #client: DockerClient;
  #settings: ContainerSettings;
  #source: string;
  #workloads = new Map<string, DockerWorkload>();
  #events: DockerEvents | null = null;
  #network: Promise<string> | null = null;

  /**
   * @param config the resolved configuration (`global.docker_host`, `docker_network`,
   *   `connect_mode`, and `source` for relative volume paths)
   * @param client an Engine API client; by default one for `global.docker_host`
   */
  constructor(config: DockerRuntimeConfig, client = new DockerClient(config.global.docker_host)) {
    this.#client = client;
    this.#settings = {
      docker_network: config.global.docker_network,
      connect_mode: config.global.connect_mode,
    };
    this.#source = config.source;
  }

  /**
   * Starts the service's container: reuses a running or stopped one with the same config
   * hash, recreates one with another hash, creates (pulling the image if missing) one that
   * does not exist, and adopts one another proxy created meanwhile. Resolves once started.
   */
  async start(service: ServiceConfig, signal: AbortSignal): Promise<Workload> {
    try {
      return await this.#start(service, signal);
    } catch (error) {
      if (signal.aborted || !(error instanceof Error)) throw error;
      throw new Error(`Cannot start container "${service.name}": ${error.message}`, {
        cause: error,
      });
    }
  }

  async #start(service: ServiceConfig, signal: AbortSignal): Promise<Workload> {
    const hash = await configHash(service, this.#settings, this.#source);
    await this.#eventsFor().connected();
    let info = await this.#inspect(service.name, signal);
    if (info && info.Config.Labels?.[LABEL_HASH] !== hash) {
      log("info", "recreating container: config changed", { container: service.name });
      await this.#client.json("DELETE", `/containers/${info.Id}`, {
        query: { force: true, v: true },
        signal,
      });
      info = null;
    }
    info ??= await this.#create(service, hash, signal);
    if (!info.State.Running) {
      await this.#client.json("POST", `/containers/${info.Id}/start`, { signal });
      info = await this.#client.json<ContainerInspect>("GET", `/containers/${info.Id}/json`, {
        signal,
      });
    }
    return this.#track(service, info);
  }

  async #inspect(name: string, signal?: AbortSignal): Promise<ContainerInspect | null> {
    try {
      return await this.#client.json<ContainerInspect>("GET", `/containers/${name}/json`, {
        signal,
      });
    } catch (error) {
      if (error instanceof DockerNotFoundError) return null;
      throw error;
    }
  }

  /** Creates the container (network and image first, if missing); adopts on a name clash. */
  async #create(service: ServiceConfig, hash: string, signal: AbortSignal) {
    const networkId = await this.#ensureNetwork();
    const body = containerSpec(service, {
      settings: this.#settings,
      source: this.#source,
      hash,
      networkId,
    });
    const create = () =>
      this.#client.json<{ Id: string }>("POST", "/containers/create", {
        query: { name: service.name },
        body,
        signal,
      });
    let id: string;
    try {
      id = (await create()).Id;
    } catch (error) {
      if (error instanceof DockerConflictError) {
        log("info", "adopting container created concurrently", { container: service.name });
        const info = await this.#inspect(service.name, signal);
        if (info) return info;
      }
      if (!(error instanceof DockerNotFoundError) || !/image/i.test(error.message)) throw error;
      await pullImage(this.#client, service.image!, signal);
      id = (await create()).Id;
    }
    log("info", "created container", { container: service.name, id: id.slice(0, 12) });
    return await this.#client.json<ContainerInspect>("GET", `/containers/${id}/json`, { signal });
  }

  /**
   * The network's ID, found or created. Concurrent calls (services cold-started together)
   * share one lookup: Docker's duplicate check is racy, and two creates at once would leave
   * two networks of the same name. Later calls look again (the network may have been removed).
   */
  #ensureNetwork(): Promise<string> {
    this.#network ??= ensureNetwork(this.#client, this.#settings.docker_network).finally(() => {
      this.#network = null;
    });
    return this.#network;
  }

  #track(service: ServiceConfig, info: ContainerInspect): DockerWorkload {
    const workload = new DockerWorkload(
      this.#client,
      info,
      upstreamOf(service, this.#settings, info),
      {
        removeOnStop: service.remove_on_stop,
        probeHttp: this.#settings.connect_mode === "host_port" && service.health_path === null,
      },
    );
    this.#workloads.set(info.Id, workload);
    workload.exited.then(() => {
      if (this.#workloads.get(info.Id) === workload) this.#workloads.delete(info.Id);
    });
    if (!info.State.Running) void workload.exitFrom(info);
    return workload;
  }

  /**
   * Running managed containers whose config hash matches a service, by service name. Docker
   * being unreachable is logged and yields none (the event stream keeps retrying).
   */
  async adopt(services: readonly ServiceConfig[]): Promise<Map<string, Workload>> {
    const adopted = new Map<string, Workload>();
    try {
      await this.#eventsFor().connected();
      const running = await this.#client.json<{ Id: string; Labels: Record<string, string> }[]>(
        "GET",
        "/containers/json",
        { query: { filters: { label: [MANAGED], status: ["running"] } } },
      );
      for (const service of services) {
        const hash = await configHash(service, this.#settings, this.#source);
        const match = running.find((c) =>
          c.Labels[LABEL_SERVICE] === service.name && c.Labels[LABEL_HASH] === hash
        );
        if (!match) continue;
        const info = await this.#inspect(match.Id);
        if (!info?.State.Running) continue;
        adopted.set(service.name, this.#track(service, info));
        log("info", "adopted running container", { container: service.name });
      }
    } catch (error) {
      if (!(error instanceof DockerUnavailableError)) throw error;
      log("warn", "docker is unreachable: no containers adopted", { error: error.message });
    }
    return adopted;
  }

  /** Ends the event subscription. Containers keep running (they are adopted next time). */
  async close(): Promise<void> {
    await this.#events?.close();
    this.#events = null;
  }

  #eventsFor(): DockerEvents {
    this.#events ??= new DockerEvents(this.#client, {
      type: ["container"],
      label: [MANAGED],
      event: ["die", "oom", "destroy"],
    }, {
      onEvent: (event) => this.#workloads.get(event.Actor.ID)?.handleEvent(event),
      onGap: () => {
        for (const workload of this.#workloads.values()) void workload.reconcile();
      },
    });
    return this.#events;
  }
}
