/**
 * The package version, read from deno.json at build time so there is one source of truth.
 *
 * @module
 */

import manifest from "../deno.json" with { type: "json" };

/** The proxy's version, e.g. `0.1.0`. */
export const VERSION: string = manifest.version;
