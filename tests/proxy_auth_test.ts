/**
 * The real proxy process on port 0 in front of real fixture processes: authentication, the
 * fixed endpoints, `/proxy/status`, and routing attacks sent as raw request targets.
 *
 * Run with `--allow-net=127.0.0.1 --allow-read=.,/tmp --allow-write=/tmp --allow-run=deno,ps
 * --allow-env`.
 */

import assert from "node:assert/strict";
import { fixtureCommand } from "./helpers/fixture_service.ts";
import { rawGet } from "./helpers/proxy.ts";
import { type ProxyProcess, startProxy } from "./helpers/proxy_process.ts";

const SERVICE_TOKEN = "service-token-for-upstream";

/** Four fixture processes: `/` catch-all, `/app` (with an auth_token), `/pub` public, `/priv`. */
function routedProxy(): Promise<ProxyProcess> {
  return startProxy({
    files: { "acme/.well-known/acme-challenge/abc_DEF-123": "abc_DEF-123.thumbprint" },
    services: [
      { name: "root", path: "/", command: fixtureCommand("--name=root") },
      {
        name: "app",
        path: "/app",
        command: fixtureCommand("--name=app"),
        auth_token: SERVICE_TOKEN,
      },
      {
        name: "pub",
        path: "/pub",
        command: fixtureCommand("--name=pub"),
        public: true,
        strip_prefix: false,
      },
      { name: "priv", path: "/priv", command: fixtureCommand("--name=priv") },
    ],
  });
}

/** Parses `x-fixture-name` / `x-fixture-target` out of a raw response head. */
function seenBy(head: string): { name: string | null; target: string | null } {
  const header = (name: string) =>
    new RegExp(`^${name}: (.*)$`, "im").exec(head)?.[1]?.trim() ?? null;
  return { name: header("x-fixture-name"), target: header("x-fixture-target") };
}

async function assertProblem(response: Response, status: number): Promise<void> {
  assert.equal(response.status, status);
  assert.equal(response.headers.get("content-type"), "application/problem+json");
  const body = await response.json();
  assert.equal(body.status, status);
}

Deno.test("auth, fixed endpoints and status through the real proxy process", async (t) => {
  await using proxy = await routedProxy();
  const url = (path: string) => new URL(path, proxy.url);

  await t.step("a missing token is a 401 with WWW-Authenticate: Bearer", async () => {
    const response = await fetch(url("/app/pid"));
    assert.equal(response.headers.get("www-authenticate"), "Bearer");
    await assertProblem(response, 401);
  });

  await t.step("a wrong token is a 401", async () => {
    const response = await fetch(url("/app/pid"), {
      headers: { authorization: `Bearer ${proxy.token.slice(0, -1)}x` },
    });
    assert.match(response.headers.get("www-authenticate") ?? "", /^Bearer\b/);
    await assertProblem(response, 401);
  });

  await t.step("refused requests start nothing", () => {
    assert.equal(proxy.logsOf("service starting").length, 0);
  });

  await t.step("the right token passes", async () => {
    const response = await fetch(url("/app/"), { headers: proxy.auth });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("x-fixture-name"), "app");
    assert.equal(await response.text(), "ok");
  });

  await t.step("a public route needs no token", async () => {
    const response = await fetch(url("/pub/x"));
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("x-fixture-name"), "pub");
    await response.body?.cancel();
  });

  await t.step("the proxy's token never reaches an upstream", async () => {
    {
      const response = await fetch(url("/priv/headers"), { headers: proxy.auth });
      assert.equal(response.status, 200);
      const headers = new Map<string, string>(await response.json());
      assert.equal(headers.get("authorization"), undefined);
      for (const value of headers.values()) assert.ok(!value.includes(proxy.token));
      assert.equal(headers.get("x-forwarded-proto"), "http");
      assert.equal(headers.get("x-forwarded-for"), "127.0.0.1");
    }
    const response = await fetch(url("/app/headers"), { headers: proxy.auth });
    const headers = new Map<string, string>(await response.json());
    assert.equal(headers.get("authorization"), `Bearer ${SERVICE_TOKEN}`);
    for (const value of headers.values()) assert.ok(!value.includes(proxy.token));
  });

  await t.step("/healthz is open", async () => {
    const response = await fetch(url("/healthz"));
    assert.equal(response.status, 200);
    assert.equal(await response.text(), "ok");
  });

  await t.step("ACME challenges are served from acme_webroot without a token", async () => {
    const response = await fetch(url("/.well-known/acme-challenge/abc_DEF-123"));
    assert.equal(response.status, 200);
    assert.equal(await response.text(), "abc_DEF-123.thumbprint");
    const missing = await fetch(url("/.well-known/acme-challenge/nope"));
    await assertProblem(missing, 404);
    const escape = await rawGet(proxy.port, "/.well-known/acme-challenge/..%2Fproxy.yaml");
    assert.equal(escape.status, 404);
    assert.ok(!escape.body.includes(proxy.token));
  });

  await t.step("/proxy/status needs the token and reports every service", async () => {
    for (const path of ["/proxy/status", "/status"]) {
      await assertProblem(await fetch(url(path)), 401);
    }
    const response = await fetch(url("/proxy/status"), { headers: proxy.auth });
    assert.equal(response.status, 200);
    const status = await response.json();
    assert.equal(typeof status.version, "string");
    assert.equal(typeof status.uptime_s, "number");
    assert.deepEqual(status.services.map((s: { name: string }) => s.name), [
      "root",
      "app",
      "pub",
      "priv",
    ]);
    const app = status.services.find((s: { name: string }) => s.name === "app");
    assert.equal(app.path, "/app");
    assert.equal(app.runtime, "process");
    assert.equal(app.state, "running");
    assert.match(app.upstream, /^http:\/\/127\.0\.0\.1:\d+/);
    assert.ok(!Number.isNaN(Date.parse(app.last_access)), app.last_access);
    assert.equal(app.in_flight, 0);
    assert.equal(app.starts, 1);
    assert.equal(typeof app.last_start_ms, "number");
    assert.equal(app.last_error, null);
    const root = status.services.find((s: { name: string }) => s.name === "root");
    assert.equal(root.state, "stopped");
    assert.equal(root.upstream, null);
    assert.equal(root.last_access, null);
    assert.equal(root.starts, 0);
  });

  await t.step("access lines never hold a secret", () => {
    const requests = proxy.logsOf("request");
    assert.ok(requests.length >= 8);
    for (const line of proxy.logs()) {
      const text = JSON.stringify(line);
      assert.ok(!text.includes(proxy.token), text);
      assert.ok(!text.includes(SERVICE_TOKEN), text);
    }
  });
});

Deno.test("routing attacks through the real proxy process", async (t) => {
  await using proxy = await routedProxy();
  const auth = { authorization: `Bearer ${proxy.token}` };

  /**
   * [raw target, service expected with the token, upstream target, status without the token].
   * The third column is what the upstream sees; the fourth proves the token rule of the
   * service the path really reaches.
   */
  const cases: [string, string, string, number][] = [
    ["/app/x?q=1", "app", "/x?q=1", 401],
    ["/app", "app", "/", 401],
    ["/apple", "root", "/apple", 401],
    ["/app/../pub/x", "pub", "/pub/x", 200],
    ["/pub/../priv/x", "priv", "/x", 401],
    ["/pub/%2e%2e/priv/x", "priv", "/x", 401],
    ["/pub/%2E%2E/priv/x", "priv", "/x", 401],
    ["/pub/.%2e/priv/x", "priv", "/x", 401],
    ["/pub/x/../../priv", "priv", "/", 401],
    ["/pub/./x", "pub", "/pub/x", 200],
    ["/pub/..%2Fpriv/x", "pub", "/pub/..%2Fpriv/x", 200],
    ["/pub%2Fpriv/x", "root", "/pub%2Fpriv/x", 401],
    ["/pub%2fx", "root", "/pub%2Fx", 401],
    ["//priv//x", "priv", "/x", 401],
    ["/pub//x", "pub", "/pub/x", 200],
    ["/%70riv/x", "priv", "/x", 401],
    ["/%70ub/x", "pub", "/pub/x", 200],
    ["/../priv/x", "priv", "/x", 401],
    [
      "/app/q?b=%2F&a=1&a=2&c=&d=~%7E+x&e=%2e%2e/..",
      "app",
      "/q?b=%2F&a=1&a=2&c=&d=~%7E+x&e=%2e%2e/..",
      401,
    ],
  ];

  for (const [target, service, upstream, anonymous] of cases) {
    await t.step(`${target} → ${service} ${upstream}`, async () => {
      const withToken = await rawGet(proxy.port, target, auth);
      assert.equal(withToken.status, 200, withToken.head);
      assert.deepEqual(seenBy(withToken.head), { name: service, target: upstream });
      const without = await rawGet(proxy.port, target);
      assert.equal(without.status, anonymous, without.head);
      if (anonymous === 401) {
        assert.match(without.head, /^www-authenticate: Bearer/im);
        assert.equal(seenBy(without.head).name, null);
      } else {
        assert.equal(seenBy(without.head).name, service);
      }
    });
  }

  await t.step("a malformed path is a 400 that reaches nobody", async () => {
    const response = await rawGet(proxy.port, "/pub/%00/x");
    assert.equal(response.status, 400);
    assert.equal(seenBy(response.head).name, null);
  });

  await t.step("without a catch-all, no route is a 404 (after auth)", async () => {
    await using bare = await startProxy({
      services: [{ name: "app", path: "/app", command: fixtureCommand() }],
    });
    assert.equal((await rawGet(bare.port, "/apple")).status, 401);
    const response = await rawGet(bare.port, "/apple", bare.auth);
    assert.equal(response.status, 404);
    assert.match(response.head, /^content-type: application\/problem\+json/im);
  });
});
