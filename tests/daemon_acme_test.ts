/**
 * `proxy-daemon` end to end with the built-in ACME client against pebble: the daemon runs as
 * a subprocess with exactly the flags `permissionFlags(config)` derives. One pebble per file
 * (fixed ports 14000/15000/8053/8055, shared with tests/acme_test.ts — `deno test` runs files
 * one after the other): everything is a step of one test, in order.
 *
 * deno test --allow-net=127.0.0.1,localhost --allow-read=.,/tmp --allow-write=/tmp \
 *   --allow-run=deno,ps,openssl,pebble,pebble-challtestsrv --allow-env tests/daemon_acme_test.ts
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { stringify } from "yaml";
import {
  type ForegroundDaemon,
  freePort,
  probeTls,
  randomToken,
  rawHttp,
  rawHttps,
  startForegroundDaemon,
} from "./helpers/daemon.ts";
import { fixtureCommand } from "./helpers/fixture_service.ts";
import { openssl } from "./helpers/openssl.ts";
import { pebbleAvailable, startPebble } from "./helpers/pebble.ts";
import { assertServiceAvailable, skipUnless } from "./helpers/services.ts";

const DOMAIN = "proxy.test";
const VALIDITY_S = 3600;
const available = await pebbleAvailable();

Deno.test(
  { name: "proxy-daemon with ACME against pebble", ignore: skipUnless(available) },
  async (t) => {
    assertServiceAvailable("pebble", available);
    const httpPort = freePort();
    const httpsPort = freePort();
    const dir = await Deno.makeTempDir({ prefix: "daemon_acme_" });
    let daemon: ForegroundDaemon | null = null;
    try {
      await using pebble = await startPebble({ httpPort, certificateValidityPeriod: VALIDITY_S });
      const token = randomToken();
      const auth = { authorization: `Bearer ${token}` };
      const storage = join(dir, "letsencrypt");
      const webroot = join(dir, "acme");
      await Deno.mkdir(join(webroot, ".well-known/acme-challenge"), { recursive: true });
      await Deno.writeTextFile(
        join(webroot, ".well-known/acme-challenge/external-token_1"),
        "external-token_1.certbot-key-authorization",
      );
      const configFile = join(dir, "proxy.yaml");
      const writeConfig = (acme: Record<string, unknown> = {}) =>
        Deno.writeTextFile(
          configFile,
          stringify({
            global: {
              domain: DOMAIN,
              bearer_token: token,
              listen_host: "127.0.0.1",
              listen_http: httpPort,
              listen_https: httpsPort,
              acme_webroot: webroot,
              shutdown_grace: 3,
              acme: {
                enabled: true,
                directory_url: pebble.directoryUrl,
                ca_bundle: pebble.listenerCaFile,
                storage_dir: storage,
                ...acme,
              },
            },
            services: [{ name: "app", path: "/app", command: fixtureCommand("--name=upstream") }],
          }),
        );
      await writeConfig();
      const root = await pebble.root();
      await Deno.writeTextFile(join(dir, "root.pem"), root);
      const httpsUp = (d: ForegroundDaemon, timeoutMs = 30_000) =>
        d.waitForLog((l) => l.msg === "listening" && l.listener === "https", timeoutMs);
      let firstSerial = "";

      await t.step(
        "issues a certificate and serves HTTPS with a chain pebble's root verifies",
        async () => {
          daemon = await startForegroundDaemon(configFile);
          assert.ok(
            daemon.flags.some((f) => f.startsWith("--allow-write=") && f.includes(storage)),
            `flags: ${daemon.flags.join(" ")}`,
          );
          await daemon.waitForLog((l) => l.msg === "listening" && l.listener === "http");
          // HTTP alone first: the log says it waits for the first certificate.
          await daemon.waitForLog((l) =>
            l.msg === "waiting for the first certificate before starting HTTPS"
          );
          await daemon.waitForLog((l) => l.msg === "certificate issued", 30_000);
          await httpsUp(daemon);
          const probe = await probeTls(httpsPort, DOMAIN, root);
          assert.match(probe.leaf.subjectAltName ?? "", /DNS:proxy\.test/);
          firstSerial = probe.serial;
          // openssl agrees: chain and name verified against pebble's current root.
          const out = await new Deno.Command("openssl", {
            args: [
              "s_client",
              "-connect",
              `127.0.0.1:${httpsPort}`,
              "-servername",
              DOMAIN,
              "-verify_hostname",
              DOMAIN,
              "-CAfile",
              join(dir, "root.pem"),
              "-verify_return_error",
            ],
            stdin: "null",
            stdout: "piped",
            stderr: "piped",
          }).output();
          const text = new TextDecoder().decode(out.stdout);
          assert.equal(out.code, 0, text + new TextDecoder().decode(out.stderr));
          assert.match(text, /Verify return code: 0 \(ok\)/);
          // The certbot layout on disk holds the same certificate.
          const stored = await Deno.readTextFile(join(storage, "live", DOMAIN, "fullchain.pem"));
          const serialLine = await openssl([
            "x509",
            "-noout",
            "-serial",
            "-in",
            join(storage, "live", DOMAIN, "fullchain.pem"),
          ], dir);
          assert.equal(serialLine.trim().replace(/^serial=/, "").toUpperCase(), firstSerial);
          assert.ok(stored.split("BEGIN CERTIFICATE").length - 1 >= 2, "full chain stored");
          const keyMode = (await Deno.stat(join(storage, "live", DOMAIN, "privkey.pem"))).mode! &
            0o777;
          assert.equal(keyMode, 0o600);
        },
      );

      await t.step("a request over HTTPS with the token reaches the upstream", async () => {
        const ok = await rawHttps(httpsPort, DOMAIN, root, "/app/pid?x=1", auth);
        assert.equal(ok.status, 200, ok.body + errorLines(daemon!));
        assert.equal(ok.headers.get("x-fixture-name"), "upstream");
        assert.equal(ok.headers.get("x-fixture-target"), "/pid?x=1");
        assert.match(ok.body, /^\d+$/);
        const denied = await rawHttps(httpsPort, DOMAIN, root, "/app/pid", {});
        assert.equal(denied.status, 401);
      });

      await t.step(
        "HTTP serves webroot challenges and 308s everything else, path and query kept",
        async () => {
          const challenge = await rawHttp(
            httpPort,
            "/.well-known/acme-challenge/external-token_1",
            {
              host: `${DOMAIN}:${httpPort}`,
            },
          );
          assert.equal(challenge.status, 200);
          assert.equal(challenge.body, "external-token_1.certbot-key-authorization");
          const unknown = await rawHttp(httpPort, "/.well-known/acme-challenge/nope", {
            host: DOMAIN,
          });
          assert.equal(unknown.status, 404);
          const redirect = await rawHttp(httpPort, "/app/some/path?q=1&r=a%20b", {
            host: `${DOMAIN}:${httpPort}`,
            ...auth,
          });
          assert.equal(redirect.status, 308);
          assert.equal(
            redirect.headers.get("location"),
            `https://${DOMAIN}:${httpsPort}/app/some/path?q=1&r=a%20b`,
          );
          const status = await rawHttp(httpPort, "/proxy/status", { host: DOMAIN, ...auth });
          assert.equal(status.status, 308, "the proxy is not served over plain HTTP");
        },
      );

      await t.step("/proxy/status shows the certificate", async () => {
        const response = await rawHttps(httpsPort, DOMAIN, root, "/proxy/status", auth);
        assert.equal(response.status, 200, response.body + errorLines(daemon!));
        const { certificate } = JSON.parse(response.body);
        assert.deepEqual(certificate.names, [DOMAIN]);
        assert.equal(certificate.serial, firstSerial);
        assert.equal(certificate.last_error, null);
        const notAfter = Date.parse(certificate.not_after);
        assert.ok(
          Math.abs(notAfter - (Date.now() + VALIDITY_S * 1000)) < 120_000,
          certificate.not_after,
        );
        const next = Date.parse(certificate.next_renewal);
        assert.ok(next > Date.now() && next < notAfter, certificate.next_renewal);
      });

      await t.step(
        "a restart reuses the stored account and certificate: no new order",
        async () => {
          const accountFile = await findAccountFile(join(storage, "accounts"));
          const accountBefore = await Deno.readTextFile(accountFile);
          assert.equal(await daemon!.stop(), 0);
          daemon = await startForegroundDaemon(configFile);
          const loaded = await daemon.waitForLog((l) => l.msg === "certificate loaded");
          assert.equal(loaded.serial, firstSerial);
          // HTTPS starts at once from the stored certificate, without waiting for a CA round trip.
          await httpsUp(daemon, 10_000);
          assert.equal((await probeTls(httpsPort, DOMAIN, root)).serial, firstSerial);
          // Give the startup check time to run against pebble, then: nothing was ordered.
          await new Promise((r) => setTimeout(r, 1500));
          const renewals = daemon.logs().filter((l) =>
            l.msg === "certificate renewal attempt" || l.msg === "certificate issued" ||
            l.msg === "certificate renewal failed"
          );
          assert.deepEqual(renewals, []);
          assert.equal(await Deno.readTextFile(accountFile), accountBefore);
          assert.equal((await probeTls(httpsPort, DOMAIN, root)).serial, firstSerial);
        },
      );

      await t.step(
        "with the CA down and renewal due, failures back off while the old certificate serves",
        async () => {
          assert.equal(await daemon!.stop(), 0);
          await pebble.stop();
          // One day before expiry of a one-hour certificate: due at once.
          await writeConfig({ renew_before_days: 1 });
          daemon = await startForegroundDaemon(configFile);
          await daemon.waitForLog((l) => l.msg === "certificate loaded");
          await httpsUp(daemon, 10_000);
          const attempt = await daemon.waitForLog((l) => l.msg === "certificate renewal attempt");
          assert.equal(attempt.serving, firstSerial);
          const failed = await daemon.waitForLog((l) => l.msg === "certificate renewal failed");
          assert.equal(failed.failures, 1);
          assert.equal(failed.serving, firstSerial);
          assert.ok(typeof failed.error === "string" && failed.error.length > 0);
          // Backoff: the first retry is base (60 s) × [0.5, 1), not an immediate loop.
          const retry = Number(failed.retry_in_s);
          assert.ok(retry >= 30 && retry <= 60, `retry_in_s ${retry}`);
          await new Promise((r) => setTimeout(r, 1000));
          assert.equal(
            daemon.logs().filter((l) => l.msg === "certificate renewal attempt").length,
            1,
          );
          // Still up, still serving the old certificate, still proxying.
          assert.equal((await probeTls(httpsPort, DOMAIN, root)).serial, firstSerial);
          const through = await rawHttps(httpsPort, DOMAIN, root, "/app/", auth);
          assert.equal(through.status, 200, through.body + errorLines(daemon));
          assert.equal(through.body, "ok");
          const status = JSON.parse(
            (await rawHttps(httpsPort, DOMAIN, root, "/proxy/status", auth)).body,
          );
          assert.equal(status.certificate.serial, firstSerial);
          assert.equal(status.certificate.last_error, failed.error);
          assert.ok(
            Date.parse(status.certificate.next_renewal) > Date.now() + 20_000,
            `next_renewal ${status.certificate.next_renewal} is the backed-off retry`,
          );
          assert.equal(await daemon.stop(), 0);
          daemon = null;
        },
      );
    } finally {
      const running = daemon as ForegroundDaemon | null;
      if (running) await running.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

/** The one account key file under `<storage>/accounts/<host>/`. */
async function findAccountFile(accounts: string): Promise<string> {
  const found: string[] = [];
  for await (const host of Deno.readDir(accounts)) {
    for await (const file of Deno.readDir(join(accounts, host.name))) {
      if (file.isFile) found.push(join(accounts, host.name, file.name));
    }
  }
  assert.equal(found.length, 1, `account files: ${found.join(", ")}`);
  return found[0];
}

/** The daemon's warn/error lines, for assertion messages. */
function errorLines(daemon: ForegroundDaemon): string {
  return "\n" + daemon.logs().filter((l) => l.level === "error" || l.level === "warn")
    .map((l) => JSON.stringify(l)).join("\n");
}
