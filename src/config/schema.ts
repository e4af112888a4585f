/**
 * The configuration schema: the single source of the config types (`z.infer` of it).
 *
 * It accepts the original NodeTool `proxy.yaml` unchanged and normalises it into one
 * fully-defaulted object: optional values without a default are `null`, never missing.
 * Numbers and booleans also accept their text form, so `${VAR}` expansions and
 * `PROXY_GLOBAL_*` overrides (always text) validate like literals.
 *
 * @module
 */

import { z } from "zod";
import { parseMemory } from "./units.ts";

/** Let's Encrypt's production directory, the default ACME server. */
export const LETS_ENCRYPT_DIRECTORY = "https://acme-v02.api.letsencrypt.org/directory";

/** Let's Encrypt's staging directory, for trying a deployment without rate limits. */
export const LETS_ENCRYPT_STAGING_DIRECTORY =
  "https://acme-staging-v02.api.letsencrypt.org/directory";

/** Docker's container name rule, which service names must follow. */
const CONTAINER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

/** Cross-field checks run even when some fields failed, so every error is reported at once. */
const ALWAYS = { when: () => true };

/** Accepts a number or its decimal text. */
function numeric(schema: z.ZodNumber) {
  return z.preprocess(
    (v) => typeof v === "string" && /^\s*-?\d+(\.\d+)?\s*$/.test(v) ? Number(v) : v,
    schema,
  );
}

/** Accepts a boolean or `true`/`false`/`yes`/`no`/`1`/`0` text. */
function flag() {
  return z.preprocess((v) => {
    if (typeof v !== "string") return v;
    const t = v.trim().toLowerCase();
    if (["true", "yes", "on", "1"].includes(t)) return true;
    if (["false", "no", "off", "0"].includes(t)) return false;
    return v;
  }, z.boolean());
}

const seconds = (min: number) => numeric(z.number().min(min, `must be at least ${min} second(s)`));
const port = () => numeric(z.number().int().min(0).max(65535));

/** An IP address or CIDR block, v4 or v6. */
const ipOrCidr = z.union([z.ipv4(), z.ipv6(), z.cidrv4(), z.cidrv6()], {
  error: (issue) => `expected an IP address or CIDR block, got ${JSON.stringify(issue.input)}`,
});

/**
 * A route prefix, normalised: leading `/`, no trailing `/`, no empty or dot segments.
 * `app/` becomes `/app`; `/` stays `/`.
 */
const routePath = z.string().trim().min(1, "must not be empty").transform((raw, ctx) => {
  const segments = raw.split("/").filter((s) => s !== "");
  for (const segment of segments) {
    if (segment === "." || segment === ".." || !/^[A-Za-z0-9._~!$&'()*+,;=:@%-]+$/.test(segment)) {
      ctx.addIssue({ code: "custom", message: `invalid path segment ${JSON.stringify(segment)}` });
      return z.NEVER;
    }
  }
  return "/" + segments.join("/");
});

/** A memory limit: a byte count or a Docker size such as `512m`; normalised to bytes. */
const memory = z.union([z.number(), z.string()]).transform((raw, ctx) => {
  const bytes = typeof raw === "number" ? raw : parseMemory(raw);
  if (bytes === null || !Number.isInteger(bytes) || bytes <= 0) {
    ctx.addIssue({
      code: "custom",
      message: `expected a memory size such as "512m" or "8g", got ${JSON.stringify(raw)}`,
    });
    return z.NEVER;
  }
  return bytes;
});

/** A volume: `{bind, mode}` or `"bind[:mode]"`; normalised to `{bind, mode}`. */
const volume = z.preprocess(
  (v) => {
    if (typeof v !== "string") return v;
    const at = v.lastIndexOf(":");
    return at > 0 ? { bind: v.slice(0, at), mode: v.slice(at + 1) } : { bind: v };
  },
  z.strictObject({
    bind: z.string().startsWith("/", "must be an absolute path inside the container"),
    mode: z.enum(["rw", "ro"]).default("rw"),
  }),
);

/** Environment values: strings, with numbers and booleans written as their text. */
const environment = z.record(
  z.string(),
  z.union([z.string(), z.number(), z.boolean()]).transform(String),
);

/** Built-in ACME client settings (`global.acme`). */
export const AcmeSchema = z.strictObject({
  /** Obtain and renew certificates with the built-in client. */
  enabled: flag().default(false),
  /** The ACME directory URL. */
  directory_url: z.url().default(LETS_ENCRYPT_DIRECTORY),
  /** A PEM file of CA certificates to trust for the ACME server (e.g. pebble). */
  ca_bundle: z.string().nullable().default(null),
  /** Where account keys and certificates live (`live/<domain>/fullchain.pem` layout). */
  storage_dir: z.string().default("/etc/letsencrypt"),
  /** Renew this many days before expiry; null means when a third of the lifetime is left. */
  renew_before_days: numeric(z.number().positive()).nullable().default(null),
});

/** Proxy-wide settings (`global:`). */
export const GlobalSchema = z.strictObject({
  domain: z.string().default("localhost"),
  email: z.string().nullable().default(null),
  bearer_token: z.string({ error: "is required" }).min(1, "must not be empty"),
  idle_timeout: seconds(1).default(300),
  listen_http: port().default(80),
  listen_https: port().default(443),
  listen_host: z.string().default("0.0.0.0"),
  docker_network: z.string().default("nodetool-net"),
  connect_mode: z.enum(["docker_dns", "host_port"]).default("docker_dns"),
  http_redirect_to_https: flag().default(true),
  acme_webroot: z.string().default("/var/www/acme"),
  tls_certfile: z.string().nullable().default(null),
  tls_keyfile: z.string().nullable().default(null),
  auto_certbot: flag().default(false),
  trusted_proxies: z.array(ipOrCidr).nullable().default([]).transform((v) => v ?? []),
  log_level: z.enum(["debug", "info", "warn", "error"]).default("info"),
  /** Null here means: `DOCKER_HOST`, else the local socket (resolved by the loader). */
  docker_host: z.string().nullable().default(null),
  shutdown_grace: seconds(0).default(30),
  /** Seconds to wait for an upstream's response headers before a 504. */
  response_timeout: seconds(1).default(300),
  acme: AcmeSchema.default(AcmeSchema.parse({})),
});

/** One routed service (`services[]`). */
export const ServiceSchema = z.strictObject({
  name: z.string().regex(
    CONTAINER_NAME,
    "must be a valid container name ([a-zA-Z0-9][a-zA-Z0-9_.-]+)",
  ),
  path: routePath,
  image: z.string().min(1).nullable().default(null),
  command: z.array(z.string()).min(1, "must name a program").nullable().default(null),
  url: z.url({ protocol: /^https?$/ }).nullable().default(null),
  internal_port: numeric(z.number().int().min(1).max(65535)).default(8000),
  host_port: numeric(z.number().int().min(1).max(65535)).nullable().default(null),
  mem_limit: memory.nullable().default(null),
  cpus: numeric(z.number().positive("must be greater than 0")).nullable().default(null),
  environment: environment.nullable().default({}).transform((v) => v ?? {}),
  volumes: z.record(z.string().min(1), volume).nullable().default({}).transform((v) => v ?? {}),
  auth_token: z.string().min(1).nullable().default(null),
  health_path: z.string().startsWith("/", "must start with /").nullable().default(null),
  startup_timeout: seconds(1).default(60),
  /** Null means the global `idle_timeout` (resolved by the loader). */
  idle_timeout: seconds(1).nullable().default(null),
  /** Null means the global `response_timeout` (resolved by the loader). */
  response_timeout: seconds(1).nullable().default(null),
  strip_prefix: flag().default(true),
  public: flag().default(false),
  remove_on_stop: flag().default(false),
}).check(z.superRefine((service, ctx) => {
  // Runs even when parsing failed, so `service` may not be an object at all (`- ` in YAML).
  if (typeof service !== "object" || service === null) return;
  const kinds = (["image", "command", "url"] as const).filter((k) => service[k] != null);
  if (kinds.length !== 1) {
    ctx.addIssue({
      code: "custom",
      message: kinds.length === 0
        ? "needs one of image, command or url"
        : `has ${kinds.join(" and ")}: give exactly one of image, command or url`,
    });
  }
}, ALWAYS));

/** The whole file. */
export const ConfigSchema = z.strictObject({
  global: GlobalSchema,
  services: z.array(ServiceSchema).nullable().default([]).transform((v) => v ?? []),
}).check(z.superRefine((config, ctx) => {
  if (!Array.isArray(config.services)) return;
  const seen = { name: new Map<string, number>(), path: new Map<string, number>() };
  const ports = new Map<number, number>();
  config.services.forEach((service, i) => {
    for (const key of ["name", "path"] as const) {
      if (typeof service?.[key] !== "string") continue;
      const first = seen[key].get(service[key]);
      if (first !== undefined) {
        ctx.addIssue({
          code: "custom",
          path: ["services", i, key],
          message: `duplicate ${key} ${JSON.stringify(service[key])} (also services[${first}])`,
        });
      } else seen[key].set(service[key], i);
    }
    if (typeof service?.host_port === "number") {
      const first = ports.get(service.host_port);
      if (first !== undefined) {
        ctx.addIssue({
          code: "custom",
          path: ["services", i, "host_port"],
          message: `duplicate host_port ${service.host_port} (also services[${first}])`,
        });
      } else ports.set(service.host_port, i);
    }
  });
  if (config.global?.acme?.enabled === true && config.global.domain === "localhost") {
    ctx.addIssue({
      code: "custom",
      path: ["global", "domain"],
      message: "must name the public domain when acme.enabled is true",
    });
  }
}, ALWAYS));

/** The parsed file before the loader resolves environment-dependent defaults. */
export type ParsedConfig = z.infer<typeof ConfigSchema>;

/** A service with every default resolved (timeouts inherited from `global`). */
export type ServiceConfig = Readonly<
  Omit<z.infer<typeof ServiceSchema>, "idle_timeout" | "response_timeout"> & {
    idle_timeout: number;
    response_timeout: number;
    /** Which runtime runs it, derived from which of image, command or url is set. */
    runtime: "docker" | "process" | "url";
  }
>;

/** Global settings with every default resolved. */
export type GlobalConfig = Readonly<
  Omit<z.infer<typeof GlobalSchema>, "docker_host"> & { docker_host: string }
>;

/** The fully-resolved, frozen configuration every other module reads. */
export interface ProxyConfig {
  /** Proxy-wide settings. */
  readonly global: GlobalConfig;
  /** Routed services, in file order. */
  readonly services: readonly ServiceConfig[];
  /** Absolute path of the file it was loaded from (relative volume paths resolve against it). */
  readonly source: string;
}
