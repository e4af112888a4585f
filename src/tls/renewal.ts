/**
 * When to renew, pure: the renewal moment of a certificate (ARI window, `renew_before_days`,
 * or a third of the lifetime left), the delay to the next check (periodic with jitter), and
 * capped exponential backoff after failures. No permissions.
 *
 * @example
 * ```ts
 * const at = renewalTime({ notBefore, notAfter }, null, null); // two thirds into the lifetime
 * ```
 *
 * @module
 */

import type { RenewalWindow } from "./acme/ari.ts";

const DAY_MS = 86_400_000;

/**
 * When a certificate should be renewed: a random moment in the ARI window when there is one;
 * else `renewBeforeDays` before expiry; else when a third of its lifetime is left.
 */
export function renewalTime(
  validity: { notBefore: Date; notAfter: Date },
  renewBeforeDays: number | null,
  ari: RenewalWindow | null,
  random: () => number = Math.random,
): Date {
  if (ari) {
    return new Date(ari.start.getTime() + random() * (ari.end.getTime() - ari.start.getTime()));
  }
  const end = validity.notAfter.getTime();
  if (renewBeforeDays !== null) return new Date(end - renewBeforeDays * DAY_MS);
  return new Date(end - (end - validity.notBefore.getTime()) / 3);
}

/**
 * Delay before the next check: `intervalMs` ±10 % jitter, but never past `dueAt`.
 *
 * @example
 * ```ts
 * nextCheckDelay(renewAt, Date.now(), 12 * 3600_000);
 * ```
 */
export function nextCheckDelay(
  dueAt: Date,
  now: number,
  intervalMs: number,
  random: () => number = Math.random,
): number {
  const periodic = intervalMs * (0.9 + 0.2 * random());
  return Math.round(Math.max(0, Math.min(dueAt.getTime() - now, periodic)));
}

/**
 * Delay before retry number `failures` (1 = after the first failure): `baseMs·2^(failures-1)`,
 * capped at `capMs`, then scaled by a random factor in [0.5, 1) so clients spread out.
 */
export function backoffMs(
  failures: number,
  baseMs: number,
  capMs: number,
  random: () => number = Math.random,
): number {
  const exponential = Math.min(capMs, baseMs * 2 ** Math.max(0, failures - 1));
  return Math.round(exponential * (0.5 + random() / 2));
}
