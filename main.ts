/**
 * Entry point of `@nodetool/proxy`: runs the CLI. The only place that calls `Deno.exit`.
 *
 * @example
 * ```sh
 * deno run --allow-read --allow-env main.ts proxy-validate-config --config proxy.yaml
 * ```
 *
 * @module
 */

import { runCli } from "./src/cli/program.ts";

export { runCli };

if (import.meta.main) {
  Deno.exit(await runCli(Deno.args));
}
