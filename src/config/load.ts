/**
 * Loads `proxy.yaml`: read → YAML with positions → `${VAR}` expansion → `PROXY_GLOBAL_*`
 * overrides → schema validation → one frozen, fully-resolved {@link ProxyConfig}.
 *
 * Every problem is collected and reported at once, each with file, line, column and field.
 *
 * @module
 */

import { isMap, isScalar, LineCounter, parseDocument, visit } from "yaml";
import type { Document, Node } from "yaml";
import { dirname, isAbsolute, resolve } from "node:path";
import type { z } from "zod";
import { ConfigError, type ConfigIssue, fieldPath } from "./errors.ts";
import { expand } from "./expand.ts";
import { applyOverrides, type Override } from "./overrides.ts";
import {
  AcmeSchema,
  ConfigSchema,
  GlobalSchema,
  type ProxyConfig,
  type ServiceConfig,
  ServiceSchema,
} from "./schema.ts";
import { closest } from "./suggest.ts";

/** The loaded configuration and the non-fatal remarks about it. */
export interface LoadResult {
  /** The frozen, fully-resolved configuration. */
  readonly config: ProxyConfig;
  /** Problems worth a warning that do not stop the proxy (e.g. a short bearer token). */
  readonly warnings: readonly ConfigIssue[];
}

/** Bearer tokens shorter than this draw a warning (`openssl rand -hex 32` makes 64). */
export const MIN_TOKEN_LENGTH = 32;

/**
 * Reads and validates a configuration file. Needs `--allow-read` for the file and
 * `--allow-env` (any variable the file names may be read).
 *
 * @throws {Deno.errors.NotFound} when the file does not exist.
 * @throws {ConfigError} with every problem found when the file is invalid.
 *
 * @example
 * ```ts
 * const { config, warnings } = await loadConfig("proxy.yaml");
 * ```
 */
export async function loadConfig(
  file: string,
  env: Readonly<Record<string, string>> = Deno.env.toObject(),
): Promise<LoadResult> {
  const source = resolve(file);
  return parseConfig(await Deno.readTextFile(source), source, env);
}

/**
 * Validates configuration text without touching the file system. `file` names the source in
 * error messages and anchors relative paths.
 *
 * @throws {ConfigError} with every problem found.
 */
export function parseConfig(
  text: string,
  file: string,
  env: Readonly<Record<string, string>>,
): LoadResult {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true });
  const at = (node: Node | undefined | null, field: string, message: string): ConfigIssue => {
    const offset = node?.range?.[0];
    const pos = offset === undefined ? null : lines.linePos(offset);
    return { file, line: pos?.line ?? null, column: pos?.col ?? null, field, message };
  };

  if (doc.errors.length > 0) {
    throw new ConfigError(doc.errors.map((e) => {
      const pos = lines.linePos(e.pos[0]);
      return { file, line: pos.line, column: pos.col, field: "", message: firstLine(e.message) };
    }));
  }

  const issues = expandVariables(doc, env, at);
  const unresolved = unresolvedAliases(doc, at);
  if (unresolved.length > 0) throw new ConfigError(unresolved);
  const raw = (doc.toJS({ maxAliasCount: 100 }) ?? {}) as Record<string, unknown>;
  if (typeof raw !== "object" || Array.isArray(raw)) {
    throw new ConfigError([at(doc.contents, "", "expected a mapping with global and services")]);
  }
  const overrides = applyOverrides(raw, env);
  for (const { variable, message } of overrides.unknown) {
    issues.push({ file: "environment", line: null, column: null, field: variable, message });
  }

  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      issues.push(...describe(issue, doc, overrides.applied, at));
    }
  }
  if (issues.length > 0 || !parsed.success) {
    throw new ConfigError(issues.sort((a, b) => (a.line ?? 1e9) - (b.line ?? 1e9)));
  }

  const config = resolveConfig(parsed.data, file, env);
  const warnings: ConfigIssue[] = [];
  if (config.global.bearer_token.length < MIN_TOKEN_LENGTH) {
    warnings.push(at(
      doc.getIn(["global", "bearer_token"], true) as Node | undefined,
      "global.bearer_token",
      `is shorter than ${MIN_TOKEN_LENGTH} characters; generate one with: openssl rand -hex 32`,
    ));
  }
  return { config, warnings };
}

type Locate = (node: Node | undefined | null, field: string, message: string) => ConfigIssue;

/** Expands `${VAR}` in every string value in place; returns issues for unset variables. */
function expandVariables(
  doc: Document,
  env: Readonly<Record<string, string>>,
  at: Locate,
): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  visit(doc, {
    Scalar(key, node, path) {
      if (key === "key" || typeof node.value !== "string") return;
      const { value, missing } = expand(node.value, env);
      node.value = value;
      for (const name of missing) {
        issues.push(at(node, fieldPath(keysOf(path)), `environment variable ${name} is not set`));
      }
    },
  });
  return issues;
}

/** Aliases (`*name`) without a matching anchor, which YAML would otherwise throw on. */
function unresolvedAliases(doc: Document, at: Locate): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  visit(doc, {
    Alias(_key, node, path) {
      if (node.resolve(doc) === undefined) {
        issues.push(at(node, fieldPath(keysOf(path)), `alias *${node.source} has no anchor`));
      }
    },
  });
  return issues;
}

/** The field path of a visited node, from the ancestors `visit` hands over. */
function keysOf(path: readonly unknown[]): (string | number)[] {
  const keys: (string | number)[] = [];
  for (let i = 0; i < path.length; i++) {
    const item = path[i] as { key?: unknown; items?: unknown[] };
    const next = path[i + 1];
    if (item && "key" in item && isScalar(item.key)) keys.push(String(item.key.value));
    else if (item?.items && next !== undefined && !isMap(item)) {
      keys.push(item.items.indexOf(next));
    }
  }
  return keys;
}

/** Turns one zod issue into positioned config issues. */
function describe(
  issue: z.core.$ZodIssue,
  doc: Document,
  overrides: readonly Override[],
  at: Locate,
): ConfigIssue[] {
  const path = issue.path as (string | number)[];
  const override = overrides.find((o) => o.path.every((p, i) => path[i] === p));
  if (override) {
    return [{
      file: "environment",
      line: null,
      column: null,
      field: fieldPath(path),
      message: `${issue.message} (from ${override.variable})`,
    }];
  }
  if (issue.code === "unrecognized_keys") {
    const map = doc.getIn(path, true);
    const known = knownKeys(path);
    return issue.keys.map((key) => {
      const pair = isMap(map)
        ? map.items.find((p) => isScalar(p.key) && p.key.value === key)
        : undefined;
      const hint = closest(key, known);
      return at(
        pair?.key as Node | undefined,
        fieldPath([...path, key]),
        `unknown key${hint ? ` (did you mean ${hint}?)` : ""}`,
      );
    });
  }
  // Point at the deepest node that exists: a missing key is reported on its parent.
  for (let depth = path.length; depth >= 0; depth--) {
    const node = depth === 0 ? doc.contents : doc.getIn(path.slice(0, depth), true);
    if (node) return [at(node as Node, fieldPath(path), message(issue, depth < path.length))];
  }
  return [at(null, fieldPath(path), issue.message)];
}

function message(issue: z.core.$ZodIssue, missing: boolean): string {
  if (missing && issue.code === "invalid_type") return "is required";
  return issue.message;
}

/** The keys the schema allows at a path, for "did you mean" hints. */
function knownKeys(path: readonly (string | number)[]): string[] {
  if (path.length === 0) return Object.keys(ConfigSchema.shape);
  if (path[0] === "services") return Object.keys(ServiceSchema.shape);
  return Object.keys(path[1] === "acme" ? AcmeSchema.shape : GlobalSchema.shape);
}

/** Fills environment-dependent defaults, inherits per-service values, and freezes. */
function resolveConfig(
  parsed: z.infer<typeof ConfigSchema>,
  file: string,
  env: Readonly<Record<string, string>>,
): ProxyConfig {
  const base = dirname(file);
  const path = (p: string) => isAbsolute(p) ? p : resolve(base, p);
  const g = parsed.global;
  const global = {
    ...g,
    docker_host: g.docker_host ?? env.DOCKER_HOST ?? "unix:///var/run/docker.sock",
    acme_webroot: path(g.acme_webroot),
    tls_certfile: g.tls_certfile === null ? null : path(g.tls_certfile),
    tls_keyfile: g.tls_keyfile === null ? null : path(g.tls_keyfile),
    acme: {
      ...g.acme,
      storage_dir: path(g.acme.storage_dir),
      ca_bundle: g.acme.ca_bundle === null ? null : path(g.acme.ca_bundle),
    },
  };
  const services: ServiceConfig[] = parsed.services.map((s) => ({
    ...s,
    idle_timeout: s.idle_timeout ?? g.idle_timeout,
    response_timeout: s.response_timeout ?? g.response_timeout,
    runtime: s.image !== null ? "docker" : s.command !== null ? "process" : "url",
  }));
  return deepFreeze({ global, services, source: file });
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object") {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

function firstLine(text: string): string {
  return text.split("\n")[0].replace(/ at line \d+, column \d+:?$/, "");
}
