/**
 * The container's entry: loads the config, derives the narrowest permission flags from it
 * ({@link permissionFlags}), and runs `deno run <flags> main.ts proxy-daemon --config <file>` as
 * a child. SIGTERM, SIGINT and SIGHUP are forwarded to the child (so `docker stop` drains and
 * `docker kill -s HUP` reloads), and the launcher exits with the child's code.
 *
 * Why a launcher: in `connect_mode: docker_dns` the proxy needs `--allow-net` for each service's
 * container name, which only the config knows, so the flags cannot be written in the Dockerfile.
 *
 * The config file is `$NODETOOL_PROXY_CONFIG` (the image sets `/etc/nodetool/proxy.yaml`);
 * arguments are passed on to `proxy-daemon` (e.g. `--verbose`).
 *
 * Permissions: `--allow-read` on the config's folder, `--allow-env`, `--allow-run=deno`.
 *
 * @example
 * ```sh
 * deno run --allow-read=/etc/nodetool --allow-env --allow-run=deno docker/launch.ts --verbose
 * ```
 *
 * @module
 */

import { loadConfigOrReport } from "../src/cli/load_or_report.ts";
import { permissionFlags } from "../src/daemon/permissions.ts";

/** Where the config is read from when `NODETOOL_PROXY_CONFIG` is not set. */
export const DEFAULT_CONFIG = "/etc/nodetool/proxy.yaml";

/** Signals passed on to the proxy. */
const FORWARDED: readonly Deno.Signal[] = ["SIGTERM", "SIGINT", "SIGHUP"];

/**
 * Runs the proxy daemon for the config at `file` with `extraArgs`; resolves with its exit code
 * (`128 + n` when signal `n` ended it).
 * Exit 1 or 2 without starting it when the config is invalid or unreadable (errors on stderr).
 */
export async function launch(file: string, extraArgs: readonly string[]): Promise<number> {
  const loaded = await loadConfigOrReport(file);
  if (typeof loaded === "number") return loaded;
  const config = loaded.config;
  const mainModule = new URL("../main.ts", import.meta.url).pathname;
  const child = new Deno.Command("deno", {
    args: [
      "run",
      "--quiet",
      "--cached-only",
      "--frozen",
      ...permissionFlags(config),
      mainModule,
      "proxy-daemon",
      "--config",
      config.source,
      ...extraArgs,
    ],
    stdin: "null",
  }).spawn();
  const handlers = FORWARDED.map((signal) => {
    const handler = () => child.kill(signal);
    Deno.addSignalListener(signal, handler);
    return [signal, handler] as const;
  });
  const { code } = await child.status; // 128 + n when a signal ended it
  for (const [signal, handler] of handlers) Deno.removeSignalListener(signal, handler);
  return code;
}

if (import.meta.main) {
  Deno.exit(await launch(Deno.env.get("NODETOOL_PROXY_CONFIG") ?? DEFAULT_CONFIG, Deno.args));
}
