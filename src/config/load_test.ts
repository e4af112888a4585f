import assert from "node:assert/strict";
import { ConfigError, type ConfigIssue } from "./errors.ts";
import { parseConfig } from "./load.ts";
import { redactConfig, REDACTED } from "./redact.ts";

const TOKEN = "t".repeat(40);
const SEED = await Deno.readTextFile(new URL("../../examples/seed.yaml", import.meta.url));

function load(text: string, env: Record<string, string> = {}) {
  return parseConfig(text, "/etc/proxy/proxy.yaml", { PROXY_BEARER_TOKEN: TOKEN, ...env });
}

function issuesOf(text: string, env: Record<string, string> = {}): ConfigIssue[] {
  try {
    load(text, env);
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return [...error.issues];
  }
  assert.fail("expected a ConfigError");
}

function minimal(globalExtra = "", services = "") {
  return `global:\n  bearer_token: \${PROXY_BEARER_TOKEN}\n${globalExtra}services:\n${
    services || "  - name: web\n    path: /\n    url: http://127.0.0.1:9000\n"
  }`;
}

Deno.test("the original's proxy.yaml loads unchanged", () => {
  const { config, warnings } = load(SEED);
  assert.deepEqual(warnings, []);
  const g = config.global;
  assert.equal(g.domain, "example.com");
  assert.equal(g.bearer_token, TOKEN);
  assert.equal(g.idle_timeout, 300);
  assert.equal(g.connect_mode, "docker_dns");
  assert.equal(g.listen_host, "0.0.0.0");
  assert.equal(g.shutdown_grace, 30);
  assert.equal(g.docker_host, "unix:///var/run/docker.sock");
  assert.equal(g.tls_certfile, "/etc/letsencrypt/live/example.com/fullchain.pem");
  const [worker] = config.services;
  assert.equal(worker.path, "/");
  assert.equal(worker.runtime, "docker");
  assert.equal(worker.host_port, null);
  assert.equal(worker.mem_limit, 8 * 1024 ** 3);
  assert.equal(worker.cpus, 4);
  assert.equal(worker.idle_timeout, 300);
  assert.deepEqual(worker.environment, { NODETOOL_API_URL: "http://localhost:8000" });
  assert.deepEqual(worker.volumes, { "/data/workspace": { bind: "/workspace", mode: "rw" } });
  assert.ok(Object.isFrozen(config) && Object.isFrozen(worker.environment));
});

Deno.test("an unset variable without a default names the variable and its line", () => {
  const issues = issuesOf(SEED, { PROXY_BEARER_TOKEN: undefined as unknown as string });
  assert.equal(issues[0].line, 4);
  assert.equal(issues[0].field, "global.bearer_token");
  assert.match(issues[0].message, /PROXY_BEARER_TOKEN is not set/);
});

Deno.test("${VAR:-default}, $$ and typed values from variables", () => {
  const text = minimal(
    "  idle_timeout: ${IDLE:-42}\n  domain: ${DOMAIN}\n  email: a$$b\n  auto_certbot: ${CB}\n",
  );
  const { config } = load(text, { DOMAIN: "x.example", CB: "true" });
  assert.equal(config.global.idle_timeout, 42);
  assert.equal(config.global.domain, "x.example");
  assert.equal(config.global.email, "a$b");
  assert.equal(config.global.auto_certbot, true);
});

Deno.test("PROXY_GLOBAL_* overrides apply after the file", () => {
  const { config } = load(minimal("  idle_timeout: 300\n"), {
    PROXY_GLOBAL_BEARER_TOKEN: "o".repeat(40),
    PROXY_GLOBAL_IDLE_TIMEOUT: "60",
    PROXY_GLOBAL_TRUSTED_PROXIES: "10.0.0.0/8, ::1",
    PROXY_GLOBAL_ACME_ENABLED: "false",
  });
  assert.equal(config.global.bearer_token, "o".repeat(40));
  assert.equal(config.global.idle_timeout, 60);
  assert.deepEqual(config.global.trusted_proxies, ["10.0.0.0/8", "::1"]);
});

Deno.test("a bad override names the variable; an unknown one gets a hint", () => {
  const issues = issuesOf(minimal(), {
    PROXY_GLOBAL_IDLE_TIMEOUT: "soon",
    PROXY_GLOBAL_IDLE_TIMOUT: "5",
  });
  assert.equal(issues.length, 2);
  assert.ok(issues.every((i) => i.file === "environment"));
  assert.match(issues.map((i) => i.message).join("\n"), /from PROXY_GLOBAL_IDLE_TIMEOUT/);
  assert.match(issues.map((i) => i.message).join("\n"), /did you mean PROXY_GLOBAL_IDLE_TIMEOUT/);
});

Deno.test("unknown keys are errors with a did-you-mean hint and a position", () => {
  const issues = issuesOf(minimal("  idle_timout: 5\n"));
  assert.equal(issues.length, 1);
  assert.deepEqual(
    { line: issues[0].line, column: issues[0].column, field: issues[0].field },
    { line: 3, column: 3, field: "global.idle_timout" },
  );
  assert.match(issues[0].message, /did you mean idle_timeout/);
});

Deno.test("YAML syntax errors carry line and column", () => {
  const issues = issuesOf("global:\n  bearer_token: [unclosed\nservices: []\n");
  assert.ok(issues[0].line !== null && issues[0].line >= 2);
  assert.equal(issues[0].file, "/etc/proxy/proxy.yaml");
});

Deno.test("duplicate YAML keys are rejected", () => {
  const issues = issuesOf(minimal("  idle_timeout: 5\n  idle_timeout: 6\n"));
  assert.match(issues[0].message, /unique/i);
});

Deno.test("every error is reported at once, in document order", () => {
  const services = [
    "  - name: a-b\n    path: app/\n    image: x\n    command: [y]\n",
    "  - name: a-b\n    path: /app\n    url: http://127.0.0.1:9\n    host_port: 7000\n",
    "  - name: c\n    path: /c\n    url: ftp://nope\n    host_port: 7000\n",
  ].join("");
  const issues = issuesOf(minimal("  connect_mode: foo\n", services));
  const fields = issues.map((i) => i.field);
  assert.deepEqual(fields, [
    "global.connect_mode",
    "services[0]",
    "services[1].name",
    "services[1].path",
    "services[2].name",
    "services[2].url",
    "services[2].host_port",
  ]);
  const lines = issues.map((i) => i.line!);
  assert.deepEqual(lines, [...lines].sort((a, b) => a - b));
});

Deno.test("bad values of every field are rejected with the field named", () => {
  const cases: [string, string, RegExp][] = [
    ["  idle_timeout: 0\n", "global.idle_timeout", /at least 1/],
    ["  listen_http: 70000\n", "global.listen_http", /65535/],
    ["  listen_https: -1\n", "global.listen_https", />=0/],
    ["  connect_mode: bridge\n", "global.connect_mode", /docker_dns/],
    ["  http_redirect_to_https: maybe\n", "global.http_redirect_to_https", /boolean/],
    ["  trusted_proxies: [300.1.1.1]\n", "global.trusted_proxies[0]", /IP address/],
    ["  log_level: loud\n", "global.log_level", /debug/],
    ["  shutdown_grace: -5\n", "global.shutdown_grace", /at least 0/],
    ["  acme:\n    enabled: true\n", "global.domain", /public domain/],
    ["  acme:\n    directory_url: nope\n", "global.acme.directory_url", /URL/i],
  ];
  for (const [extra, field, message] of cases) {
    const issues = issuesOf(minimal(extra));
    assert.equal(issues.length, 1, `${field}: ${JSON.stringify(issues)}`);
    assert.equal(issues[0].field, field);
    assert.match(issues[0].message, message, field);
  }
  const serviceCases: [string, string, RegExp][] = [
    ["name: -bad\n    path: /\n    url: http://x", "services[0].name", /container name/],
    ["name: ok\n    path: /a/../b\n    url: http://x", "services[0].path", /segment/],
    ["name: ok\n    path: /\n    command: []", "services[0].command", /program/],
    [
      "name: ok\n    path: /\n    image: x\n    internal_port: 0",
      "services[0].internal_port",
      />=1/,
    ],
    ["name: ok\n    path: /\n    image: x\n    mem_limit: 8x", "services[0].mem_limit", /memory/],
    ["name: ok\n    path: /\n    image: x\n    cpus: 0", "services[0].cpus", /greater than 0/],
    ["name: ok\n    path: /\n    image: x\n    health_path: up", "services[0].health_path", /\//],
    [
      "name: ok\n    path: /\n    image: x\n    startup_timeout: 0",
      "services[0].startup_timeout",
      /1/,
    ],
    [
      "name: ok\n    path: /\n    image: x\n    environment: [a]",
      "services[0].environment",
      /record|object/i,
    ],
    [
      "name: ok\n    path: /\n    image: x\n    volumes:\n      /a: b",
      "services[0].volumes./a.bind",
      /absolute/,
    ],
    ["name: ok\n    path: /\n    image: x\n    public: sure", "services[0].public", /boolean/],
    ["name: ok\n    path: /", "services[0]", /one of image, command or url/],
  ];
  for (const [body, field, message] of serviceCases) {
    const issues = issuesOf(minimal("", `  - ${body}\n`));
    assert.equal(issues.length, 1, `${field}: ${JSON.stringify(issues)}`);
    assert.equal(issues[0].field, field);
    assert.match(issues[0].message, message, field);
  }
});

Deno.test("a missing bearer token is required; a short one warns", () => {
  const missing = issuesOf("global:\n  domain: x\nservices: []\n");
  assert.deepEqual(missing.map((i) => [i.field, i.message]), [[
    "global.bearer_token",
    "is required",
  ]]);
  const { warnings } = load("global:\n  bearer_token: short\n");
  assert.equal(warnings.length, 1);
  assert.match(warnings[0].message, /shorter than 32/);
  assert.equal(warnings[0].line, 2);
});

Deno.test("both volume forms and memory units normalise", () => {
  const { config } = load(minimal(
    "",
    "  - name: vv\n    path: /v\n    image: x\n    mem_limit: 512m\n    volumes:\n" +
      "      ./data: /data:ro\n      /abs: /abs\n      /obj:\n        bind: /o\n",
  ));
  const [v] = config.services;
  assert.equal(v.mem_limit, 512 * 1024 * 1024);
  assert.deepEqual(v.volumes, {
    "./data": { bind: "/data", mode: "ro" },
    "/abs": { bind: "/abs", mode: "rw" },
    "/obj": { bind: "/o", mode: "rw" },
  });
});

Deno.test("paths normalise and per-service values inherit from global", () => {
  const { config } = load(minimal(
    "  idle_timeout: 77\n",
    "  - name: aa\n    path: app//x/\n    command: [deno]\n    idle_timeout: 5\n" +
      "  - name: bb\n    path: b\n    url: http://127.0.0.1:1\n",
  ));
  assert.deepEqual(config.services.map((s) => [s.path, s.idle_timeout, s.runtime]), [
    ["/app/x", 5, "process"],
    ["/b", 77, "url"],
  ]);
});

Deno.test("relative file paths resolve against the config file's folder", () => {
  const { config } = load(minimal("  acme_webroot: acme\n  tls_certfile: certs/a.pem\n"));
  assert.equal(config.global.acme_webroot, "/etc/proxy/acme");
  assert.equal(config.global.tls_certfile, "/etc/proxy/certs/a.pem");
  assert.equal(config.global.acme.storage_dir, "/etc/letsencrypt");
});

Deno.test("DOCKER_HOST supplies the default docker_host", () => {
  const { config } = load(minimal(), { DOCKER_HOST: "unix:///run/other.sock" });
  assert.equal(config.global.docker_host, "unix:///run/other.sock");
});

Deno.test("redaction hides tokens and secret-looking environment values", () => {
  const { config } = load(minimal(
    "",
    "  - name: aa\n    path: /\n    image: x\n    auth_token: upstream-secret\n" +
      "    environment:\n      HF_TOKEN: hf-secret\n      MODEL: llama\n",
  ));
  const text = JSON.stringify(redactConfig(config));
  assert.ok(
    !text.includes(TOKEN) && !text.includes("upstream-secret") && !text.includes("hf-secret"),
  );
  assert.ok(text.includes("llama") && text.includes(REDACTED));
});

Deno.test("an empty list item is a positioned error, not a crash (found by the mutation test)", () => {
  const issues = issuesOf(minimal("", "  - name: ok\n    path: /\n    url: http://x\n  -\n"));
  assert.equal(issues.length, 1);
  assert.equal(issues[0].field, "services[1]");
  assert.equal(issues[0].line, 7);
});
