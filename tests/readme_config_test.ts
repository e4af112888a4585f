import assert from "node:assert/strict";
import { AcmeSchema, GlobalSchema, ServiceSchema } from "../src/config/schema.ts";

const README = await Deno.readTextFile(new URL("../README.md", import.meta.url));

/** The keys of the README table under a heading. */
function documentedKeys(heading: string): Set<string> {
  const start = README.indexOf(`### ${heading}\n`);
  assert.ok(start >= 0, `README has no "### ${heading}" section`);
  const section = README.slice(start).split(/\n### |\n## /)[0];
  const keys = [...section.matchAll(/^\| `([a-z_]+)`(?: \/ `([a-z_]+)`)? +\|/gm)]
    .flatMap((m) => [m[1], m[2]].filter(Boolean));
  return new Set(keys);
}

for (
  const [heading, schema] of [
    ["`global`", GlobalSchema],
    ["`global.acme`", AcmeSchema],
    ["`services[]`", ServiceSchema],
  ] as const
) {
  Deno.test(`README documents exactly the schema's ${heading} keys`, () => {
    assert.deepEqual(
      [...documentedKeys(heading)].sort(),
      Object.keys(schema.shape).sort(),
    );
  });
}
