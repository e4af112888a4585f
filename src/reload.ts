/**
 * Reload on SIGHUP: re-read the config file and apply it, or keep the old one when invalid.
 *
 * @module
 */

import type { ProxyApp } from "./app.ts";
import { ConfigError, formatIssue } from "./config/errors.ts";
import { loadConfig } from "./config/load.ts";
import { log, setLogLevel } from "./log.ts";

/**
 * Re-reads `file` and applies it to `app`. An invalid or unreadable file is rejected with its
 * errors logged, and the running configuration stays. Resolves whether it was applied.
 * Needs `--allow-read` for the file and `--allow-env`.
 */
export async function reloadFromFile(
  app: ProxyApp,
  file: string,
  verbose: boolean,
): Promise<boolean> {
  try {
    const { config, warnings } = await loadConfig(file);
    for (const warning of warnings) log("warn", formatIssue(warning));
    if (!verbose) setLogLevel(config.global.log_level);
    app.reload(config);
    return true;
  } catch (error) {
    const errors = error instanceof ConfigError
      ? error.issues.map(formatIssue)
      : [error instanceof Error ? error.message : String(error)];
    log("error", "reload rejected; keeping the running configuration", { errors });
    return false;
  }
}

/**
 * Reloads on every SIGHUP until the returned function is called. Reloads never overlap.
 */
export function reloadOnHangup(app: ProxyApp, file: string, verbose: boolean): () => void {
  let running = Promise.resolve(true);
  const handler = () => {
    log("info", "SIGHUP: reloading configuration", { file });
    running = running.then(() => reloadFromFile(app, file, verbose));
  };
  Deno.addSignalListener("SIGHUP", handler);
  return () => Deno.removeSignalListener("SIGHUP", handler);
}
