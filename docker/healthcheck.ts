/**
 * The image's `HEALTHCHECK`: asks the proxy's plain-HTTP listener for `/healthz` on loopback.
 * Exit 0 when it answers 200 (the listener serves the proxy) or 308 (with TLS it redirects
 * everything but ACME challenges to HTTPS, so an answer proves the daemon runs); 1 otherwise.
 *
 * The port is the config's `listen_http` (`$NODETOOL_PROXY_CONFIG`, as for the launcher), so a
 * changed port needs no change to the image; `listen_host` must accept loopback connections
 * (`0.0.0.0`, the default, does).
 *
 * Permissions: `--allow-read` on the config's folder, `--allow-env`, `--allow-net=127.0.0.1`.
 *
 * @module
 */

import { loadConfig } from "../src/config/load.ts";
import { DEFAULT_CONFIG } from "./launch.ts";

/** How long one probe may take. */
const TIMEOUT_MS = 4000;

/** Returns the exit code for one probe of `http://127.0.0.1:<listen_http>/healthz`. */
export async function probe(file: string): Promise<number> {
  try {
    const { config } = await loadConfig(file);
    const response = await fetch(`http://127.0.0.1:${config.global.listen_http}/healthz`, {
      redirect: "manual",
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    await response.body?.cancel();
    if (response.status === 200 || response.status === 308) return 0;
    console.error(`unhealthy: /healthz answered ${response.status}`);
  } catch (error) {
    const cause = error instanceof Error && error.cause ? ` (${error.cause})` : "";
    console.error(`unhealthy: ${error instanceof Error ? error.message : error}${cause}`);
  }
  return 1;
}

if (import.meta.main) {
  Deno.exit(await probe(Deno.env.get("NODETOOL_PROXY_CONFIG") ?? DEFAULT_CONFIG));
}
