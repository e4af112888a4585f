/**
 * Assembles a running proxy from a configuration: runtimes, service manager, route table,
 * request handler and listener; and takes it down again (drain, then stop services).
 *
 * @module
 */

import { dirname } from "node:path";
import type { ProxyConfig } from "./config/schema.ts";
import { log } from "./log.ts";
import { type AccessRecord, createHandler, type ProxyHandler } from "./proxy/handler.ts";
import { RouteTable } from "./routing/table.ts";
import { DockerRuntime } from "./runtimes/docker/runtime.ts";
import { ProcessRuntime } from "./runtimes/process/runtime.ts";
import { type Handler, listen, type Listener, type ListenOptions } from "./server.ts";
import { ServiceManager } from "./services/manager.ts";
import type { CertificateStatus, StatusDocument } from "./status/document.ts";
import { VERSION } from "./version.ts";

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
  /** Adds a listener that serves this proxy. */
  serve(options: ListenOptions): Listener;
  /** The status document `/proxy/status` answers. */
  status(): StatusDocument;
  /**
   * Graceful stop: listeners stop accepting and in-flight requests and sockets may finish for
   * up to `global.shutdown_grace`; then the services this proxy started are stopped.
   */
  stop(): Promise<void>;
}

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
  const current: ProxyHandler = createHandler({
    routes: new RouteTable(config.services),
    global: config.global,
    services: manager,
    status,
    accessLog: logAccess,
    acmeChallenge: hooks.acmeChallenge,
  });
  const listeners: Listener[] = [];
  const handler: Handler = (request, info) => current(request, info);
  return {
    manager,
    handler,
    status,
    serve(options) {
      const listener = listen(options, handler);
      listeners.push(listener);
      return listener;
    },
    async stop() {
      const graceMs = config.global.shutdown_grace * 1000;
      const drained = await Promise.all(listeners.map((l) => l.drain(graceMs)));
      if (!drained.every(Boolean)) {
        log("warn", "shutdown grace ended with requests still in flight", {
          grace_s: graceMs / 1000,
        });
      }
      await manager.shutdown(graceMs);
      log("info", "stopped");
    },
  };
}
