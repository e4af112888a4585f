/**
 * `proxy` (alias `run`): one listener in the foreground.
 *
 * @module
 */

import type { Command } from "commander";
import { createProxy } from "../app.ts";
import { setLogLevel } from "../log.ts";
import { listen, type Listener, nextShutdownSignal } from "../server.ts";
import { printErr } from "./io.ts";
import { reloadOnHangup } from "../reload.ts";
import { loadConfigOrReport } from "./load_or_report.ts";
import { formatIssue } from "../config/errors.ts";
import { log } from "../log.ts";

interface ProxyOptions {
  config: string;
  host?: string;
  port?: string;
  tls: boolean;
  verbose?: boolean;
}

/**
 * Registers the command: HTTPS on `listen_https` with the configured certificate files, or
 * plain HTTP on `listen_http` with `--no-tls` or without certificate files. `--host` and
 * `--port` override the address (`--port 0` picks a free port; the log says which). Runs until
 * SIGTERM or SIGINT, then drains. Permissions: see the README (`deno task proxy`).
 */
export function registerProxy(program: Command, setExit: (code: number) => void): void {
  program.command("proxy").alias("run")
    .description("run the proxy in the foreground")
    .requiredOption("-c, --config <file>", "configuration file (proxy.yaml)")
    .option("--host <address>", "address to bind (default: global.listen_host)")
    .option("--port <port>", "port to bind; 0 picks a free one")
    .option("--no-tls", "serve plain HTTP even when certificate files are configured")
    .option("-v, --verbose", "log debug messages")
    .action(async (options: ProxyOptions) => setExit(await runProxy(options)));
}

async function runProxy(options: ProxyOptions): Promise<number> {
  const port = options.port === undefined ? undefined : Number(options.port);
  if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port <= 65535)) {
    printErr(`error: --port must be a port number, got "${options.port}"`);
    return 2;
  }
  const loaded = await loadConfigOrReport(options.config);
  if (typeof loaded === "number") return loaded;
  const { config, warnings } = loaded;
  setLogLevel(options.verbose ? "debug" : config.global.log_level);
  for (const warning of warnings) log("warn", formatIssue(warning));
  const g = config.global;
  const useTls = options.tls && g.tls_certfile !== null && g.tls_keyfile !== null;
  const tls = useTls
    ? {
      cert: await Deno.readTextFile(g.tls_certfile!),
      key: await Deno.readTextFile(g.tls_keyfile!),
    }
    : undefined;
  const app = await createProxy(config);
  let listener: Listener;
  try {
    listener = listen({
      name: tls ? "https" : "http",
      hostname: options.host ?? g.listen_host,
      port: port ?? (tls ? g.listen_https : g.listen_http),
      tls,
    }, app.handler);
  } catch (error) {
    printErr(`error: cannot listen: ${error instanceof Error ? error.message : error}`);
    await app.stop([]);
    return 1;
  }
  const stopReloading = reloadOnHangup(app, config.source, options.verbose === true);
  const signal = await nextShutdownSignal();
  stopReloading();
  log("info", "shutting down", { signal, grace_s: g.shutdown_grace });
  await app.stop([listener]);
  return 0;
}
