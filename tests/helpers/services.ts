/**
 * Gates for tests that need an outside service (dockerd, pebble, nginx…).
 *
 * On a laptop without the service such a test is skipped (`ignore`); when
 * `NODETOOL_REQUIRE_SERVICES=1` (set by `.ci/run`) a missing service fails the test instead,
 * so nothing silently skips in CI.
 *
 * @module
 */

/** Whether CI demands every service-dependent test to run. */
export const servicesRequired: boolean = Deno.env.get("NODETOOL_REQUIRE_SERVICES") === "1";

/**
 * Returns Deno.test `ignore` for a service: true (skip) when it is missing on a laptop; false
 * when present. In CI a missing service yields false too, and the test's own setup then fails
 * loudly — call {@link assertServiceAvailable} first thing in the test.
 *
 * @example
 * ```ts
 * const dockerOk = await dockerAvailable();
 * Deno.test({ name: "cold start", ignore: skipUnless(dockerOk) }, async () => {
 *   assertServiceAvailable("dockerd", dockerOk);
 *   // …
 * });
 * ```
 */
export function skipUnless(available: boolean): boolean {
  return !available && !servicesRequired;
}

/** Throws when the service is missing: in CI a missing service is a failure, not a skip. */
export function assertServiceAvailable(name: string, available: boolean): void {
  if (!available) {
    throw new Error(`${name} is not available, and NODETOOL_REQUIRE_SERVICES=1 forbids skipping`);
  }
}
