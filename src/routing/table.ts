/**
 * The immutable route table: longest whole-segment prefix match on a normalised path.
 *
 * @module
 */

import type { ServiceConfig } from "../config/schema.ts";
import { normalizePath } from "./normalize.ts";

/** The result of a successful match. */
export interface RouteMatch {
  /** The service whose prefix matched. */
  readonly service: ServiceConfig;
  /** The path to send upstream: the rest after the prefix with `strip_prefix`, else the path. */
  readonly upstreamPath: string;
}

/**
 * Routes normalised paths to services. Matching costs at most one map lookup per segment of
 * the deepest configured prefix, whatever the number of services.
 *
 * @example
 * ```ts
 * const table = new RouteTable(config.services);
 * table.match("/app/x"); // { service: app, upstreamPath: "/x" }
 * table.match("/apple"); // the "/" service, or null without one
 * ```
 */
export class RouteTable {
  readonly #byPrefix = new Map<string, ServiceConfig>();
  readonly #maxDepth: number;

  /**
   * @param services services with normalised `path`s (as the config schema yields them).
   * @throws {TypeError} when a path is not a valid route prefix or two services share one.
   */
  constructor(services: readonly ServiceConfig[]) {
    let maxDepth = 0;
    for (const service of services) {
      const normalized = normalizePath(service.path);
      const prefix = normalized === null || normalized === "/"
        ? normalized
        : normalized.replace(/\/$/, "");
      if (prefix === null) {
        throw new TypeError(`Invalid route path ${JSON.stringify(service.path)}`);
      }
      if (this.#byPrefix.has(prefix)) {
        throw new TypeError(`Duplicate route path ${JSON.stringify(service.path)}`);
      }
      this.#byPrefix.set(prefix, service);
      if (prefix !== "/") maxDepth = Math.max(maxDepth, prefix.split("/").length - 1);
    }
    this.#maxDepth = maxDepth;
  }

  /**
   * Finds the service for a path from {@link normalizePath}: the longest prefix that ends on
   * a segment boundary (`/app` matches `/app` and `/app/x`, never `/apple`); `/` matches the
   * rest. Returns null when nothing matches.
   */
  match(path: string): RouteMatch | null {
    // Prefixes deeper than the deepest route cannot match: start at that depth.
    let end = path.length;
    for (let i = 0, depth = 0; i < path.length; i++) {
      if (path.charCodeAt(i) === 47 /* "/" */ && depth++ === this.#maxDepth) {
        end = i;
        break;
      }
    }
    while (end > 0) {
      const service = this.#byPrefix.get(end === path.length ? path : path.slice(0, end));
      if (service !== undefined) return matched(service, path, end);
      end = path.lastIndexOf("/", end - 1);
    }
    const root = this.#byPrefix.get("/");
    return root === undefined ? null : { service: root, upstreamPath: path };
  }
}

/** The match for `service` whose prefix is `path`'s first `length` characters. */
function matched(service: ServiceConfig, path: string, length: number): RouteMatch {
  if (!service.strip_prefix || service.path === "/") return { service, upstreamPath: path };
  return { service, upstreamPath: length === path.length ? "/" : path.slice(length) };
}
