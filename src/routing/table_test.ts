import assert from "node:assert/strict";
import type { ServiceConfig } from "../config/schema.ts";
import { RouteTable } from "./table.ts";

/** Just enough of a service for routing. */
function service(name: string, path: string, strip_prefix = true): ServiceConfig {
  return { name, path, strip_prefix } as ServiceConfig;
}

const table = new RouteTable([
  service("root", "/"),
  service("app", "/app"),
  service("deep", "/app/api/v2"),
  service("keep", "/keep", false),
  service("tilde", "/%7Euser"),
]);

function route(path: string): [string, string] | null {
  const match = table.match(path);
  return match === null ? null : [match.service.name, match.upstreamPath];
}

Deno.test("RouteTable matches whole segments only", () => {
  assert.deepEqual(route("/app"), ["app", "/"]);
  assert.deepEqual(route("/app/"), ["app", "/"]);
  assert.deepEqual(route("/app/x"), ["app", "/x"]);
  assert.deepEqual(route("/apple"), ["root", "/apple"]);
  assert.deepEqual(route("/app%2Fx"), ["root", "/app%2Fx"]);
});

Deno.test("RouteTable prefers the longest prefix", () => {
  assert.deepEqual(route("/app/api/v2/items"), ["deep", "/items"]);
  assert.deepEqual(route("/app/api/v2"), ["deep", "/"]);
  assert.deepEqual(route("/app/api/v3/items"), ["app", "/api/v3/items"]);
  assert.deepEqual(route("/app/api"), ["app", "/api"]);
});

Deno.test("RouteTable sends the full path without strip_prefix", () => {
  assert.deepEqual(route("/keep/x/"), ["keep", "/keep/x/"]);
  assert.deepEqual(route("/keep"), ["keep", "/keep"]);
});

Deno.test("RouteTable lets / catch the rest", () => {
  assert.deepEqual(route("/"), ["root", "/"]);
  assert.deepEqual(route("/other/x"), ["root", "/other/x"]);
});

Deno.test("RouteTable normalises configured prefixes like request paths", () => {
  assert.deepEqual(route("/~user/x"), ["tilde", "/x"]);
});

Deno.test("RouteTable without a root route returns null for unrouted paths", () => {
  const only = new RouteTable([service("app", "/app")]);
  assert.equal(only.match("/"), null);
  assert.equal(only.match("/apple"), null);
  assert.equal(only.match("/app/x")?.service.name, "app");
});

Deno.test("RouteTable refuses invalid and duplicate prefixes", () => {
  assert.throws(() => new RouteTable([service("a", "/x%zz")]), TypeError);
  assert.throws(() => new RouteTable([service("a", "/x"), service("b", "/x/")]), TypeError);
});
