/**
 * Assembles a running proxy from a configuration: runtimes, service manager, route table,
 * request handler and listener; and takes it down again (drain, then stop services).
 *
 * @module
 */

import { dirname } from "node:path";
import type { ProxyConfig } from "./config/schema.ts";
import { log, logEnabled } from "./log.ts";
import { closeIdleUpstreamConnections } from "./proxy/forward.ts";
import { type AccessRecord, createHandler, type ProxyHandler } from "./proxy/handler.ts";
import { RouteTable } from "./routing/table.ts";
import { DockerRuntime } from "./runtimes/docker/runtime.ts";
import { ProcessRuntime } from "./runtimes/process/runtime.ts";
import type { Handler } from "./server.ts";
import { ServiceManager } from "./services/manager.ts";
import type { CertificateStatus, StatusDocument } from "./status/document.ts";
import { VERSION } from "./version.ts";

/** Anything that can stop accepting and wait for its in-flight work (a listener). */
export interface Drainable {
  /** Resolves `true` when everything finished within `graceMs`. */
  drain(graceMs: number): Promise<boolean>;
}

/** Hooks the TLS layer plugs into the request path. */
export interface TlsHooks {
  /** Pending HTTP-01 answers of the built-in ACME client. */
  readonly acmeChallenge?: (token: string) => string | undefined;
  /** The certificate being served, for `/proxy/status`. */
  readonly certificate?: () => CertificateStatus | null;
}

/** A running proxy. */
export interface ProxyApp {
  /** The service manager (state of every service). */
  readonly manager: ServiceManager;
  /** The request handler in use; listeners always call the current one. */
  readonly handler: Handler;
  /** The status document `/proxy/status` answers. */
  status(): StatusDocument;
  /**
   * Applies a new configuration without dropping connections: routes, tokens and services
   * change at once; removed or changed services stop after their in-flight work. Listener
   * addresses and TLS files need a restart (a warning names them).
   */
  reload(next: ProxyConfig): void;
  /**
   * Graceful stop: the listeners stop accepting and in-flight requests and sockets may finish
   * for up to `global.shutdown_grace`; then the services this proxy started are stopped.
   */
  stop(listeners: readonly Drainable[]): Promise<void>;
}

/** Global settings a running proxy cannot change in place. */
const RESTART_ONLY = [
  "listen_host",
  "listen_http",
  "listen_https",
  "tls_certfile",
  "tls_keyfile",
  "docker_host",
  "docker_network",
  "connect_mode",
] as const;

function logAccess(record: AccessRecord): void {
  log("info", "request", { ...record });
}

/**
 * Builds the proxy for `config`. Docker is only contacted when a service has an `image`.
 * Permissions: those of the runtimes in use (see the README's permission table).
 */
export async function createProxy(config: ProxyConfig, hooks: TlsHooks = {}): Promise<ProxyApp> {
  const started = performance.now();
  const needsDocker = config.services.some((s) => s.runtime === "docker");
  const manager = new ServiceManager(config.services, {
    process: new ProcessRuntime({ cwd: dirname(config.source) }),
    ...(needsDocker ? { docker: new DockerRuntime(config) } : {}),
  });
  await manager.adopt();
  const status = (): StatusDocument => ({
    version: VERSION,
    uptime_s: Math.round((performance.now() - started) / 1000),
    services: manager.status(),
    certificate: hooks.certificate?.() ?? null,
  });
  const handlerFor = (c: ProxyConfig): ProxyHandler =>
    createHandler({
      routes: new RouteTable(c.services),
      global: c.global,
      services: manager,
      status,
      // Without info logging the handler builds no access records at all. The level is set
      // before the proxy is built and before every reload, which rebuilds the handler.
      accessLog: logEnabled("info") ? logAccess : undefined,
      acmeChallenge: hooks.acmeChallenge,
    });
  let current = handlerFor(config);
  let active = config;
  const handler: Handler = (request, info) => current(request, info);
  return {
    manager,
    handler,
    status,
    reload(next) {
      const fixed = RESTART_ONLY.filter((key) => next.global[key] !== active.global[key]);
      if (fixed.length > 0) {
        log("warn", "reload cannot change these settings; restart to apply", { settings: fixed });
      }
      if (!needsDocker && next.services.some((s) => s.runtime === "docker")) {
        log(
          "error",
          "reload added Docker services to a proxy started without any; restart to apply",
        );
      }
      manager.reconfigure(next.services);
      current = handlerFor(next);
      active = next;
      log("info", "configuration reloaded", { services: next.services.length });
    },
    async stop(listeners) {
      const graceMs = active.global.shutdown_grace * 1000;
      const drained = await Promise.all(listeners.map((l) => l.drain(graceMs)));
      if (!drained.every(Boolean)) {
        log("warn", "shutdown grace ended with requests still in flight", {
          grace_s: graceMs / 1000,
        });
      }
      closeIdleUpstreamConnections();
      await manager.shutdown(graceMs);
      log("info", "stopped");
    },
  };
}
