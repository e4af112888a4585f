/**
 * Starts the proxy (`main.ts proxy`) for a benchmark: a config with warm `url:` routes to
 * loopback ports, the permission flags the daemon would derive from it, and a wait until it
 * listens. Needs `--allow-run=deno`, `--allow-net=127.0.0.1` and `--allow-write` for `dir`.
 *
 * @module
 */

import { join } from "node:path";
import { loadConfig } from "../src/config/load.ts";
import { permissionFlags } from "../src/daemon/permissions.ts";
import { spawn, type Spawned, waitForPort } from "./processes.ts";

/** One route of the benchmark proxy: `path` → `http://127.0.0.1:<port>`. */
export interface BenchRoute {
  readonly name: string;
  readonly path: string;
  readonly port: number;
}

/**
 * Writes `proxy.yaml` into `dir` and runs `main` (default: this checkout's `main.ts`) as
 * the proxy on `port` with `token` as its bearer token.
 *
 * @example
 * ```ts
 * const proxy = await startProxy(dir, 8080, token, [{ name: "up", path: "/", port: 8000 }]);
 * await using _ = proxy.child;
 * ```
 */
export async function startProxy(
  dir: string,
  port: number,
  token: string,
  routes: readonly BenchRoute[],
  main = new URL("../main.ts", import.meta.url).pathname,
): Promise<{ child: Spawned; flags: string[] }> {
  const file = join(dir, `proxy-${port}.yaml`);
  const services = routes.map((r) =>
    `  - name: ${r.name}\n    path: ${r.path}\n    url: http://127.0.0.1:${r.port}\n`
  );
  await Deno.writeTextFile(
    file,
    `global:\n  bearer_token: ${token}\n  listen_host: 127.0.0.1\n  log_level: info\n` +
      `services:\n${services.join("")}`,
  );
  const { config } = await loadConfig(file);
  const flags = permissionFlags(config);
  const child = spawn("proxy", "deno", [
    "run",
    ...flags,
    main,
    "proxy",
    "--config",
    file,
    "--port",
    String(port),
    "--host",
    "127.0.0.1",
  ]);
  await waitForPort(child, port);
  return { child, flags };
}
