/**
 * Loads the config for a CLI command, turning failures into messages and exit codes.
 *
 * @module
 */

import { ConfigError } from "../config/errors.ts";
import { loadConfig, type LoadResult } from "../config/load.ts";
import { printErr } from "./io.ts";

/**
 * Returns the loaded config, or an exit code after printing why: 1 for an invalid config
 * (every error listed), 2 for a file that cannot be read. Needs `--allow-read`, `--allow-env`.
 */
export async function loadConfigOrReport(file: string): Promise<LoadResult | 1 | 2> {
  try {
    return await loadConfig(file);
  } catch (error) {
    if (error instanceof ConfigError) {
      printErr(error.message);
      return 1;
    }
    if (error instanceof Deno.errors.NotFound) printErr(`error: config file not found: ${file}`);
    else if (
      error instanceof Deno.errors.PermissionDenied || error instanceof Deno.errors.NotCapable
    ) {
      printErr(`error: cannot read config file ${file}: ${(error as Error).message}`);
    } else if (error instanceof Deno.errors.IsADirectory) {
      printErr(`error: config path is a directory: ${file}`);
    } else throw error;
    return 2;
  }
}
