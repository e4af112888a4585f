/**
 * Property tests: the route table against a naive reference, and the config loader against
 * random mutations of a valid file.
 *
 * Run with `--allow-read=. --allow-env tests/reliability_property_test.ts` (npm: fast-check).
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { ConfigError } from "../src/config/errors.ts";
import { parseConfig } from "../src/config/load.ts";
import type { ServiceConfig } from "../src/config/schema.ts";
import { normalizePath } from "../src/routing/normalize.ts";
import { RouteTable } from "../src/routing/table.ts";
import { urlService } from "./helpers/proxy.ts";

const segment = fc.constantFrom("a", "b", "app", "api", "v1", "x", "a.b", "%41", "~u", "-");
const prefix = fc.array(segment, { minLength: 0, maxLength: 4 }).map((s) => "/" + s.join("/"));
const path = fc.array(fc.oneof(segment, fc.constantFrom("", ".", "..", "apple", "a%2Fb")), {
  maxLength: 6,
}).chain((segments) => fc.constantFrom("", "/").map((end) => "/" + segments.join("/") + end));

/**
 * The obvious matcher: normalise every prefix like a request path (`/%41` is `/A`), try them
 * all, keep the longest that ends on a segment boundary.
 */
function reference(services: readonly ServiceConfig[], normalized: string) {
  let best: { service: ServiceConfig; prefix: string } | null = null;
  for (const service of services) {
    const p = normalizePath(service.path)!;
    const hit = p === "/" || normalized === p || normalized.startsWith(p + "/");
    if (hit && (best === null || p.length > best.prefix.length)) best = { service, prefix: p };
  }
  if (best === null) return null;
  const { service, prefix } = best;
  if (!service.strip_prefix || prefix === "/") {
    return { name: service.name, upstreamPath: normalized };
  }
  const rest = normalized.slice(prefix.length);
  return { name: service.name, upstreamPath: rest === "" ? "/" : rest };
}

Deno.test("the route table agrees with a naive longest-prefix reference", () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(prefix, { minLength: 1, maxLength: 8 }),
      fc.array(fc.boolean(), { minLength: 8, maxLength: 8 }),
      fc.array(path, { minLength: 1, maxLength: 20 }),
      (prefixes, strips, paths) => {
        const services = prefixes.map((p, i) =>
          urlService(`svc${i}`, p, "http://127.0.0.1:1", { strip_prefix: strips[i] })
        );
        const table = new RouteTable(services);
        for (const raw of paths) {
          const normalized = normalizePath(raw);
          if (normalized === null) continue;
          const match = table.match(normalized);
          const actual = match === null
            ? null
            : { name: match.service.name, upstreamPath: match.upstreamPath };
          assert.deepEqual(actual, reference(services, normalized), `${raw} → ${normalized}`);
        }
      },
    ),
    { numRuns: 500 },
  );
});

const VALID = `global:
  bearer_token: "0123456789abcdef0123456789abcdef"
  idle_timeout: 60
  listen_http: 8080
  trusted_proxies: [10.0.0.0/8]
  acme:
    enabled: false
services:
  - name: app
    path: /app
    url: http://127.0.0.1:8000
    auth_token: upstream-secret
  - name: worker
    path: /worker/
    command: ["deno", "run", "worker.ts"]
    environment: { A: 1, B: "\${HOME}" }
    idle_timeout: 30
  - name: db
    path: /db
    image: postgres:16
    mem_limit: 512m
    volumes: { data: "/var/lib/postgresql:rw" }
`;

/** One random edit of the text: delete, duplicate, insert or replace a slice. */
const mutation = fc.record({
  at: fc.nat(),
  length: fc.nat({ max: 40 }),
  kind: fc.constantFrom("delete", "insert", "replace", "duplicate"),
  text: fc.oneof(
    fc.string({ maxLength: 20 }),
    fc.constantFrom(
      ":",
      "- ",
      "\n  ",
      "\t",
      "{",
      "[",
      "&a",
      "*a",
      "!!binary",
      "${",
      "${UNSET}",
      "~",
      "null",
      "-1",
      "1e999",
      "0x10",
      "'",
      '"',
      "#",
      "<<: *a",
      "\u0000",
      "\uFEFF",
      "---\n",
      "...",
    ),
  ),
});

function mutate(text: string, edits: { at: number; length: number; kind: string; text: string }[]) {
  for (const { at, length, kind, text: piece } of edits) {
    const i = at % (text.length + 1);
    const j = Math.min(text.length, i + length);
    if (kind === "delete") text = text.slice(0, i) + text.slice(j);
    else if (kind === "insert") text = text.slice(0, i) + piece + text.slice(i);
    else if (kind === "replace") text = text.slice(0, i) + piece + text.slice(j);
    else text = text.slice(0, j) + text.slice(i, j) + text.slice(j);
  }
  return text;
}

Deno.test("the valid base config loads", () => {
  assert.equal(
    parseConfig(VALID, "/etc/proxy/proxy.yaml", { HOME: "/root" }).config.services.length,
    3,
  );
});

Deno.test("random mutations of a valid config load or throw ConfigError, nothing else", () => {
  fc.assert(
    fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (edits) => {
      const text = mutate(VALID, edits);
      try {
        parseConfig(text, "/etc/proxy/proxy.yaml", { HOME: "/root" });
      } catch (error) {
        if (!(error instanceof ConfigError)) {
          throw new Error(`${String(error)}\n--- input ---\n${text}`);
        }
      }
    }),
    { numRuns: 2000 },
  );
});

Deno.test("an alias without its anchor is a ConfigError (found by the mutation test)", () => {
  assert.throws(
    () => parseConfig("global:\n  bearer_token: *missing\n", "/etc/proxy/proxy.yaml", {}),
    ConfigError,
  );
});
