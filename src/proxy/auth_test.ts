import assert from "node:assert/strict";
import { BearerAuth, timingSafeEqual } from "./auth.ts";

Deno.test("timingSafeEqual compares whole strings of any length", () => {
  assert.ok(timingSafeEqual("secret", "secret"));
  assert.ok(!timingSafeEqual("secret", "secreT"));
  assert.ok(!timingSafeEqual("secret", "secret2"));
  assert.ok(!timingSafeEqual("secret", "secre"));
  assert.ok(!timingSafeEqual("secret", ""));
  // A longer guess whose extra characters are NUL still differs in length.
  assert.ok(!timingSafeEqual("s", "s\0"));
});

const auth = new BearerAuth("t0ken");
const headers = (authorization?: string) =>
  new Headers(authorization === undefined ? {} : { authorization });

Deno.test("BearerAuth accepts the right token, scheme in any case", () => {
  assert.ok(auth.allows(headers("Bearer t0ken")));
  assert.ok(auth.allows(headers("bearer t0ken")));
  assert.equal(auth.check(headers("BEARER   t0ken")), null);
});

Deno.test("BearerAuth refuses missing, wrong and malformed credentials", () => {
  for (
    const value of [
      undefined,
      "Bearer",
      "Bearer t0ke",
      "Bearer t0kenX",
      "Basic t0ken",
      "t0ken",
      "Bearer t0ken extra",
    ]
  ) {
    assert.ok(!auth.allows(headers(value)), String(value));
  }
});

Deno.test("BearerAuth answers 401 problems with WWW-Authenticate", async () => {
  const missing = auth.check(headers())!;
  assert.equal(missing.status, 401);
  assert.equal(missing.headers.get("www-authenticate"), "Bearer");
  assert.equal(missing.headers.get("content-type"), "application/problem+json");
  const body = await missing.json();
  assert.equal(body.status, 401);
  assert.equal(body.title, "Unauthorized");
  const wrong = auth.check(headers("Bearer nope"))!;
  assert.equal(wrong.headers.get("www-authenticate"), 'Bearer error="invalid_token"');
  assert.ok(!(await wrong.text()).includes("t0ken"));
});

Deno.test("BearerAuth refuses an empty token", () => {
  assert.throws(() => new BearerAuth(""), TypeError);
});
