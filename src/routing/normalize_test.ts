import assert from "node:assert/strict";
import { normalizePath } from "./normalize.ts";

Deno.test("normalizePath keeps canonical paths as they are", () => {
  for (const path of ["/", "/app", "/app/x/", "/a-b_c~d.e/f:g@h!$&'()*+,;="]) {
    assert.equal(normalizePath(path), path);
  }
});

Deno.test("normalizePath removes dot-segments and collapses slashes", () => {
  const cases: [string, string][] = [
    ["//", "/"],
    ["/a//b", "/a/b"],
    ["/a/./b", "/a/b"],
    ["/a/../b", "/b"],
    ["/../../etc/passwd", "/etc/passwd"],
    ["/pub/../priv", "/priv"],
    ["/a/b/..", "/a/"],
    ["/a/.", "/a/"],
    ["/a/b/../../..", "/"],
    ["/.../x", "/.../x"],
    ["/a/..b/c", "/a/..b/c"],
  ];
  for (const [raw, expected] of cases) assert.equal(normalizePath(raw), expected, raw);
});

Deno.test("normalizePath decodes unreserved escapes before removing dot-segments", () => {
  const cases: [string, string][] = [
    ["/pub/%2e%2e/priv", "/priv"],
    ["/pub/%2E%2e/priv", "/priv"],
    ["/pub/.%2e/priv", "/priv"],
    ["/%2e/x", "/x"],
    ["/%61pp/%7Euser", "/app/~user"],
    ["/a%2db", "/a-b"],
  ];
  for (const [raw, expected] of cases) assert.equal(normalizePath(raw), expected, raw);
});

Deno.test("normalizePath keeps an encoded slash as part of its segment", () => {
  assert.equal(normalizePath("/app%2fx"), "/app%2Fx");
  assert.equal(normalizePath("/pub/..%2fpriv"), "/pub/..%2Fpriv");
  assert.equal(normalizePath("/pub/%2e%2e%2fpriv"), "/pub/..%2Fpriv");
});

Deno.test("normalizePath upper-cases kept escapes and encodes what is not a pchar", () => {
  assert.equal(normalizePath("/a%3fb%20c"), "/a%3Fb%20c");
  assert.equal(normalizePath("/a\\..\\b"), "/a%5C..%5Cb");
  assert.equal(normalizePath('/a"<>{}|^`'), "/a%22%3C%3E%7B%7D%7C%5E%60");
  assert.equal(normalizePath("/é/😀"), "/%C3%A9/%F0%9F%98%80");
});

Deno.test("normalizePath refuses bad escapes, NUL, controls and relative paths", () => {
  for (
    const raw of ["/a%", "/a%2", "/a%zz", "/a%2g", "/a%00b", "/a\tb", "/a\x7f", "", "a/b", "*"]
  ) {
    assert.equal(normalizePath(raw), null, JSON.stringify(raw));
  }
  assert.equal(normalizePath("/a\ud800"), null);
});

Deno.test("normalizePath is idempotent", () => {
  for (const raw of ["/a/%2e%2e/b%2f/./c%7e//", "/x%3f/%C3%A9", "/a/b/../"]) {
    const once = normalizePath(raw)!;
    assert.equal(normalizePath(once), once);
  }
});
