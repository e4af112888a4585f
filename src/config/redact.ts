/**
 * Secret redaction for anything that prints configuration.
 *
 * @module
 */

import type { ProxyConfig } from "./schema.ts";

/** What replaces a secret in printed output. */
export const REDACTED = "[redacted]";

const SECRET_NAME = /token|secret|passw|pwd|key|credential|auth|private|api_?key|cookie|session/i;

/**
 * Whether an environment variable's name suggests its value is a secret.
 *
 * @example
 * ```ts
 * looksSecret("HF_TOKEN"); // true
 * looksSecret("NODETOOL_API_URL"); // false
 * ```
 */
export function looksSecret(name: string): boolean {
  return SECRET_NAME.test(name);
}

/**
 * Returns a plain copy of the config with `bearer_token`, every `auth_token` and
 * secret-looking environment values replaced by {@link REDACTED}.
 */
export function redactConfig(config: ProxyConfig): Record<string, unknown> {
  return {
    global: { ...config.global, bearer_token: REDACTED },
    services: config.services.map((s) => ({
      ...s,
      auth_token: s.auth_token === null ? null : REDACTED,
      environment: Object.fromEntries(
        Object.entries(s.environment).map(([k, v]) => [k, looksSecret(k) ? REDACTED : v]),
      ),
    })),
    source: config.source,
  };
}
