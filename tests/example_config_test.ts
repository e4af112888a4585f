import assert from "node:assert/strict";
import { parse } from "yaml";
import { loadConfig } from "../src/config/load.ts";
import { AcmeSchema, GlobalSchema, ServiceSchema } from "../src/config/schema.ts";

const EXAMPLE = new URL("../proxy.yaml.example", import.meta.url);
const TEXT = await Deno.readTextFile(EXAMPLE);
const LINES = TEXT.split("\n");
const RAW = parse(TEXT) as {
  global: Record<string, unknown> & { acme: Record<string, unknown> };
  services: Record<string, unknown>[];
};

/** Whether the first line defining `key` after line `start` has a comment on it or above it. */
function commented(key: string, start: number): boolean {
  const at = LINES.findIndex((line, i) => i > start && new RegExp(`^\\s*${key}:`).test(line));
  assert.ok(at > 0, `${key} is not set in the example`);
  return LINES[at].includes(" #") || /^\s*(- )?#/.test(LINES[at - 1]);
}

Deno.test("proxy.yaml.example loads with the loader, without warnings", async () => {
  const { config, warnings } = await loadConfig(EXAMPLE.pathname, {
    PROXY_BEARER_TOKEN: "0123456789abcdef".repeat(4),
  });
  assert.deepEqual(warnings, []);
  assert.deepEqual(config.services.map((s) => s.runtime), ["docker", "process", "url"]);
});

for (
  const [section, schema, keys, heading] of [
    ["global", GlobalSchema, Object.keys(RAW.global), "global:"],
    ["global.acme", AcmeSchema, Object.keys(RAW.global.acme), "  acme:"],
    ["services[]", ServiceSchema, [...new Set(RAW.services.flatMap(Object.keys))], "services:"],
  ] as const
) {
  Deno.test(`proxy.yaml.example sets and comments every ${section} key`, () => {
    assert.deepEqual([...keys].sort(), Object.keys(schema.shape).sort());
    const start = LINES.indexOf(heading);
    assert.deepEqual(keys.filter((key) => !commented(key, start)), []);
  });
}
