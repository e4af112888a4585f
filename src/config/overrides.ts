/**
 * The original's environment overrides: `PROXY_GLOBAL_<KEY>` replaces `global.<key>` after
 * the file is read (`PROXY_GLOBAL_ACME_<KEY>` replaces `global.acme.<key>`).
 *
 * @module
 */

import { AcmeSchema, GlobalSchema } from "./schema.ts";
import { closest } from "./suggest.ts";

const PREFIX = "PROXY_GLOBAL_";
const GLOBAL_KEYS = Object.keys(GlobalSchema.shape);
const ACME_KEYS = Object.keys(AcmeSchema.shape);
const LISTS = new Set(["trusted_proxies"]);

/** One applied override: which variable set which field. */
export interface Override {
  /** The environment variable, e.g. `PROXY_GLOBAL_IDLE_TIMEOUT`. */
  readonly variable: string;
  /** The field path it set, e.g. `["global", "idle_timeout"]`. */
  readonly path: readonly string[];
}

/** Overrides found in an environment, and variables that name no field. */
export interface OverrideResult {
  /** Overrides applied, in variable-name order. */
  readonly applied: readonly Override[];
  /** Messages for `PROXY_GLOBAL_*` variables that match no field. */
  readonly unknown: readonly { variable: string; message: string }[];
}

/**
 * Applies `PROXY_GLOBAL_*` variables to the raw (pre-validation) document, in place.
 * Values stay text; the schema converts numbers and booleans. Comma lists split for
 * `trusted_proxies`.
 *
 * @example
 * ```ts
 * const raw = { global: { idle_timeout: 300 } };
 * applyOverrides(raw, { PROXY_GLOBAL_IDLE_TIMEOUT: "60" });
 * // raw.global.idle_timeout === "60"
 * ```
 */
export function applyOverrides(
  raw: Record<string, unknown>,
  env: Readonly<Record<string, string>>,
): OverrideResult {
  const applied: Override[] = [];
  const unknown: { variable: string; message: string }[] = [];
  for (const variable of Object.keys(env).filter((v) => v.startsWith(PREFIX)).sort()) {
    const key = variable.slice(PREFIX.length).toLowerCase();
    const value = env[variable];
    const global = asObject(raw, "global");
    if (GLOBAL_KEYS.includes(key) && key !== "acme") {
      global[key] = LISTS.has(key) ? value.split(",").map((s) => s.trim()).filter(Boolean) : value;
      applied.push({ variable, path: ["global", key] });
    } else if (key.startsWith("acme_") && ACME_KEYS.includes(key.slice(5))) {
      asObject(global, "acme")[key.slice(5)] = value;
      applied.push({ variable, path: ["global", "acme", key.slice(5)] });
    } else {
      const hint = closest(key, [...GLOBAL_KEYS, ...ACME_KEYS.map((k) => "acme_" + k)]);
      unknown.push({
        variable,
        message: `names no global setting${
          hint ? ` (did you mean ${PREFIX}${hint.toUpperCase()}?)` : ""
        }`,
      });
    }
  }
  return { applied, unknown };
}

function asObject(parent: Record<string, unknown>, key: string): Record<string, unknown> {
  const value = parent[key];
  if (value && typeof value === "object" && !Array.isArray(value)) {
    return value as Record<string, unknown>;
  }
  return (parent[key] = {});
}
