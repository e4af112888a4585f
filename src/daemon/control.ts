/**
 * `proxy-daemon start | stop | restart | status | reload`: a detached proxy managed through a
 * pid file. Every action is idempotent: a stale pid file is cleaned up, starting a running
 * daemon says so, stopping a stopped one succeeds.
 *
 * Permissions: `--allow-read` and `--allow-write` for the pid and log files, `--allow-run=deno`
 * (`start` runs `deno` from `PATH`), and whatever {@link permissionFlags} grants the daemon.
 *
 * @module
 */

import type { ProxyConfig } from "../config/schema.ts";
import { permissionFlags } from "./permissions.ts";

/** Files that identify one daemon. */
export interface DaemonFiles {
  /** Where the daemon's pid is kept. */
  readonly pidFile: string;
  /** Where its stdout and stderr (JSON log lines) go. */
  readonly logFile: string;
}

/** What `status` found. */
export type DaemonState =
  | { readonly running: true; readonly pid: number; readonly since: Date }
  | { readonly running: false; readonly stale: boolean };

/**
 * Whether a process with this pid exists (signal 0 semantics via a harmless SIGCONT). Only
 * ESRCH means "gone": EPERM means it exists under another user, and a missing `--allow-run`
 * (Deno.kill needs it unscoped) must not pass for a dead daemon, whose pid file would be
 * removed.
 */
export function processAlive(pid: number): boolean {
  try {
    Deno.kill(pid, "SIGCONT");
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    if (error instanceof Deno.errors.PermissionDenied) return true;
    throw error;
  }
}

/** Reads the pid file: the pid and the file's modification time as the start time. */
async function readPidFile(pidFile: string): Promise<{ pid: number; since: Date } | null> {
  try {
    const [text, info] = await Promise.all([Deno.readTextFile(pidFile), Deno.stat(pidFile)]);
    const pid = Number(text.trim());
    return Number.isInteger(pid) && pid > 0 ? { pid, since: info.mtime ?? new Date() } : null;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

/** Reports whether the daemon runs; a pid file naming a dead process is removed. */
export async function daemonStatus(files: DaemonFiles): Promise<DaemonState> {
  const found = await readPidFile(files.pidFile);
  if (found && processAlive(found.pid)) return { running: true, ...found };
  if (found) await Deno.remove(files.pidFile).catch(() => {});
  return { running: false, stale: found !== null };
}

/**
 * Starts the daemon detached (`main.ts proxy-daemon --config …` with the config's permission
 * flags), appending its output to the log file, and waits until it listens or exits.
 * Resolves with the pid, or with the running daemon's pid and `already: true`.
 */
export async function startDaemon(
  config: ProxyConfig,
  files: DaemonFiles,
  options: { verbose: boolean; mainModule: string; readyTimeoutMs?: number },
): Promise<{ pid: number; already: boolean }> {
  const state = await daemonStatus(files);
  if (state.running) return { pid: state.pid, already: true };
  const logSizeBefore = await Deno.stat(files.logFile).then((i) => i.size, () => 0);
  const flags = permissionFlags(config, { writable: [files.logFile, files.pidFile] });
  const args = [
    "run",
    "--quiet",
    ...flags,
    options.mainModule,
    "proxy-daemon",
    "--config",
    config.source,
    "--log-file",
    files.logFile,
  ];
  if (options.verbose) args.push("--verbose");
  // The daemon writes its own log file: pipes to this short-lived process would break.
  const child = new Deno.Command("deno", {
    args,
    stdin: "null",
    stdout: "null",
    stderr: "null",
    detached: true,
  }).spawn();
  child.unref();
  await Deno.writeTextFile(files.pidFile, `${child.pid}\n`);
  const deadline = Date.now() + (options.readyTimeoutMs ?? 30_000);
  while (Date.now() < deadline) {
    if (!processAlive(child.pid)) {
      await Deno.remove(files.pidFile).catch(() => {});
      throw new Error(`daemon exited during startup; see ${files.logFile}`);
    }
    const text = await readFrom(files.logFile, logSizeBefore);
    if (/"msg":"listening"/.test(text)) return { pid: child.pid, already: false };
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`daemon did not report listening within the timeout; see ${files.logFile}`);
}

/** The text appended to `file` after `offset`; empty while the file does not exist. */
async function readFrom(file: string, offset: number): Promise<string> {
  try {
    return new TextDecoder().decode((await Deno.readFile(file)).subarray(offset));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return "";
    throw error;
  }
}

/**
 * Sends SIGTERM and waits for the graceful drain; SIGKILL after `timeoutMs`. Resolves
 * `"stopped"`, `"killed"` or `"not-running"`.
 */
export async function stopDaemon(
  files: DaemonFiles,
  timeoutMs: number,
): Promise<"stopped" | "killed" | "not-running"> {
  const state = await daemonStatus(files);
  if (!state.running) return "not-running";
  Deno.kill(state.pid, "SIGTERM");
  const deadline = Date.now() + timeoutMs;
  while (processAlive(state.pid)) {
    if (Date.now() > deadline) {
      Deno.kill(state.pid, "SIGKILL");
      await Deno.remove(files.pidFile).catch(() => {});
      return "killed";
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  await Deno.remove(files.pidFile).catch(() => {});
  return "stopped";
}

/** Asks the daemon to reload its config (SIGHUP). Resolves false when it is not running. */
export async function reloadDaemon(files: DaemonFiles): Promise<boolean> {
  const state = await daemonStatus(files);
  if (!state.running) return false;
  Deno.kill(state.pid, "SIGHUP");
  return true;
}
