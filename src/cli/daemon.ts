/**
 * `proxy-daemon` (alias `daemon`): the production shape. Without an action it runs in the
 * foreground (for containers and systemd); `start | stop | restart | status | reload` manage a
 * detached daemon through a pid file.
 *
 * @module
 */

import type { Command } from "commander";
import { dirname, resolve } from "node:path";
import { formatIssue } from "../config/errors.ts";
import {
  type DaemonFiles,
  daemonStatus,
  reloadDaemon,
  startDaemon,
  stopDaemon,
} from "../daemon/control.ts";
import { loadConfig } from "../config/load.ts";
import { runDaemon } from "../daemon/foreground.ts";
import { log, setLogFile, setLogLevel } from "../log.ts";
import { printErr, printOut } from "./io.ts";
import { loadConfigOrReport } from "./load_or_report.ts";

const ACTIONS = ["start", "stop", "restart", "status", "reload"] as const;
type Action = typeof ACTIONS[number];

interface DaemonOptions {
  config: string;
  pidFile?: string;
  logFile?: string;
  verbose?: boolean;
  stopTimeout?: string;
}

/** Registers the command. Exit 0 ok, 1 failure, 2 usage. */
export function registerDaemon(program: Command, setExit: (code: number) => void): void {
  program.command("proxy-daemon").alias("daemon")
    .description("run the proxy with HTTP+HTTPS listeners, or manage it detached")
    .argument("[action]", `one of ${ACTIONS.join(", ")}; omit to run in the foreground`)
    .requiredOption("-c, --config <file>", "configuration file (proxy.yaml)")
    .option("--pid-file <file>", "pid file (default: nodetool-proxy.pid beside the config)")
    .option(
      "--log-file <file>",
      "log file (default for start: nodetool-proxy.log beside the config)",
    )
    .option(
      "--stop-timeout <seconds>",
      "stop: SIGKILL after this long (default: shutdown_grace + 5)",
    )
    .option("-v, --verbose", "log debug messages")
    .action(async (action: string | undefined, options: DaemonOptions) => {
      if (action !== undefined && !(ACTIONS as readonly string[]).includes(action)) {
        printErr(`error: unknown action "${action}" (expected ${ACTIONS.join(", ")})`);
        return setExit(2);
      }
      setExit(await daemon(action as Action | undefined, options));
    });
}

/** Default for `--stop-timeout` when the config cannot say (`shutdown_grace` + 5 s). */
const DEFAULT_STOP_TIMEOUT_S = 35;

async function daemon(action: Action | undefined, options: DaemonOptions): Promise<number> {
  // stop and status work from the pid file alone: a broken config on disk must not keep an
  // operator from stopping the running daemon.
  const folder = dirname(resolve(options.config));
  const files = {
    pidFile: resolve(options.pidFile ?? `${folder}/nodetool-proxy.pid`),
    logFile: resolve(options.logFile ?? `${folder}/nodetool-proxy.log`),
  };
  if (action === "status") return await printStatus(files);
  if (action === "stop") {
    const timeoutMs = await stopTimeoutMs(options);
    return timeoutMs === null ? 2 : await stop(files, timeoutMs);
  }
  const loaded = await loadConfigOrReport(options.config);
  if (typeof loaded === "number") return loaded;
  const { config, warnings } = loaded;
  if (action === undefined) {
    if (options.logFile) setLogFile(files.logFile);
    setLogLevel(options.verbose ? "debug" : config.global.log_level);
    for (const warning of warnings) log("warn", formatIssue(warning));
    await runDaemon(config, options.verbose === true);
    return 0;
  }
  const start = async () => {
    const mainModule = new URL("../../main.ts", import.meta.url).pathname;
    try {
      const { pid, already } = await startDaemon(config, files, {
        verbose: options.verbose === true,
        mainModule,
      });
      printOut(
        already ? `already running (pid ${pid})` : `started (pid ${pid}), log: ${files.logFile}`,
      );
      return 0;
    } catch (error) {
      printErr(`error: ${error instanceof Error ? error.message : error}`);
      return 1;
    }
  };
  switch (action) {
    case "start":
      return await start();
    case "restart": {
      const timeoutMs = await stopTimeoutMs(options);
      if (timeoutMs === null) return 2;
      await stop(files, timeoutMs);
      return await start();
    }
    case "reload": {
      // The config was validated above: an invalid file is refused here, not by the daemon.
      if (await reloadDaemon(files)) {
        printOut(`reload requested (SIGHUP); see ${files.logFile}`);
        return 0;
      }
      printErr("error: not running");
      return 1;
    }
  }
}

/** `--stop-timeout` in ms, else `shutdown_grace` + 5 s (35 s when the config is unreadable). */
async function stopTimeoutMs(options: DaemonOptions): Promise<number | null> {
  if (options.stopTimeout !== undefined) {
    const seconds = Number(options.stopTimeout);
    if (seconds >= 0) return seconds * 1000;
    printErr(`error: --stop-timeout must be a number of seconds, got "${options.stopTimeout}"`);
    return null;
  }
  try {
    return ((await loadConfig(options.config)).config.global.shutdown_grace + 5) * 1000;
  } catch {
    return DEFAULT_STOP_TIMEOUT_S * 1000;
  }
}

async function stop(files: DaemonFiles, timeoutMs: number): Promise<number> {
  const result = await stopDaemon(files, timeoutMs);
  printOut(result === "not-running" ? "not running" : result);
  return 0;
}

async function printStatus(files: DaemonFiles): Promise<number> {
  const state = await daemonStatus(files);
  if (!state.running) {
    printOut(state.stale ? "not running (removed a stale pid file)" : "not running");
    return 3;
  }
  const uptime = Math.round((Date.now() - state.since.getTime()) / 1000);
  printOut(`running (pid ${state.pid}), up ${uptime}s`);
  return 0;
}
