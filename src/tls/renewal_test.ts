import assert from "node:assert/strict";
import { backoffMs, nextCheckDelay, renewalTime } from "./renewal.ts";

const notBefore = new Date("2026-01-01T00:00:00Z");
const notAfter = new Date("2026-03-31T00:00:00Z"); // 89 days

Deno.test("renewalTime: a third of the lifetime left by default", () => {
  const third = notAfter.getTime() - (notAfter.getTime() - notBefore.getTime()) / 3;
  assert.equal(renewalTime({ notBefore, notAfter }, null, null).getTime(), third);
});

Deno.test("renewalTime: renew_before_days before expiry", () => {
  assert.equal(
    renewalTime({ notBefore, notAfter }, 10, null).toISOString(),
    "2026-03-21T00:00:00.000Z",
  );
});

Deno.test("renewalTime: the ARI window wins, at a random point inside it", () => {
  const start = new Date("2026-02-01T00:00:00Z");
  const end = new Date("2026-02-03T00:00:00Z");
  assert.equal(
    renewalTime({ notBefore, notAfter }, 10, { start, end }, () => 0).getTime(),
    start.getTime(),
  );
  assert.equal(
    renewalTime({ notBefore, notAfter }, 10, { start, end }, () => 0.5).toISOString(),
    "2026-02-02T00:00:00.000Z",
  );
});

Deno.test("nextCheckDelay: periodic with ±10 % jitter, never past the due time", () => {
  const now = Date.parse("2026-01-01T00:00:00Z");
  const far = new Date(now + 100 * 3_600_000);
  assert.equal(nextCheckDelay(far, now, 3_600_000, () => 0), 3_240_000);
  assert.equal(nextCheckDelay(far, now, 3_600_000, () => 1), 3_960_000);
  assert.equal(nextCheckDelay(new Date(now + 5_000), now, 3_600_000, () => 0.5), 5_000);
  assert.equal(nextCheckDelay(new Date(now - 5_000), now, 3_600_000), 0);
});

Deno.test("backoffMs doubles per failure up to the cap, jittered into [½, 1)", () => {
  const top = () => 0.999_999;
  assert.deepEqual(
    [1, 2, 3, 4, 5, 10].map((n) => backoffMs(n, 1_000, 8_000, top)),
    [1_000, 2_000, 4_000, 8_000, 8_000, 8_000],
  );
  assert.equal(backoffMs(3, 1_000, 8_000, () => 0), 2_000);
});
