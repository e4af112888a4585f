/**
 * The operator CLI end to end, as subprocesses with real permission flags:
 * `proxy-daemon start | status | reload | stop` on a detached daemon (temp pid and log files),
 * certificate files swapped under a running HTTPS listener, and `proxy-status`.
 *
 * deno test --allow-net=127.0.0.1,localhost --allow-read=.,/tmp --allow-write=/tmp \
 *   --allow-run=deno,ps,openssl,kill --allow-env tests/daemon_cli_test.ts
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { stringify } from "yaml";
import { MAIN, ROOT, runCli } from "./helpers/cli.ts";
import { childPids, controlFlags, freePort, probeTls, randomToken } from "./helpers/daemon.ts";
import { fixtureCommand, processGone, waitFor } from "./helpers/fixture_service.ts";
import { makeCa, makeLeaf } from "./helpers/openssl.ts";

const CLEAR_SCREEN = "\x1b[H\x1b[2J";

/** A temp folder with a config, pid and log file, and the CLI bound to them. */
async function daemonDir(prefix: string) {
  const dir = await Deno.makeTempDir({ prefix });
  const files = {
    dir,
    config: join(dir, "proxy.yaml"),
    pid: join(dir, "proxy.pid"),
    log: join(dir, "proxy.log"),
  };
  const daemon = (action: string) =>
    runCli(controlFlags(dir), [
      "proxy-daemon",
      action,
      "--config",
      files.config,
      "--pid-file",
      files.pid,
      "--log-file",
      files.log,
    ]);
  const logLines = async () =>
    (await Deno.readTextFile(files.log).catch(() => "")).split("\n").filter((l) => l.trim())
      .map((l) => {
        try {
          return JSON.parse(l) as Record<string, unknown>;
        } catch {
          return { msg: l };
        }
      });
  const waitForLog = async (msg: string, after = 0, timeoutMs = 10_000) => {
    await waitFor(
      `log line "${msg}"`,
      async () => (await logLines()).slice(after).some((l) => l.msg === msg),
      timeoutMs,
    );
    return (await logLines()).slice(after).find((l) => l.msg === msg)!;
  };
  return { ...files, daemon, logLines, waitForLog };
}

/** Stops the daemon named by `pidFile` if it still runs (cleanup after a failed assertion). */
async function killLeftover(pidFile: string): Promise<void> {
  const pid = Number((await Deno.readTextFile(pidFile).catch(() => "")).trim());
  if (!(pid > 0)) return;
  if (await processGone(pid)) return;
  await signal(pid, "TERM");
  await waitFor("leftover daemon to exit", () => processGone(pid), 10_000);
}

/**
 * `kill -<name> <pid>` (Deno.kill of a foreign pid would need `--allow-run` unscoped in the
 * test runner; `--allow-run=kill` is enough for this).
 */
async function signal(pid: number, name: "HUP" | "TERM"): Promise<void> {
  const { code } = await new Deno.Command("kill", { args: [`-${name}`, String(pid)] }).output();
  assert.equal(code, 0, `kill -${name} ${pid}`);
}

/**
 * GETs `url` from `concurrency` workers until `enough()`; counts in `progress.done`. Returns
 * the failures (network errors, non-200s, wrong bodies).
 */
async function requestLoop(
  url: string,
  headers: Record<string, string>,
  concurrency: number,
  enough: () => boolean,
  progress: { done: number },
): Promise<string[]> {
  const failures: string[] = [];
  const worker = async () => {
    while (!enough()) {
      try {
        const response = await fetch(url, { headers });
        const body = await response.text();
        if (response.status !== 200 || body !== "ok") {
          failures.push(`${response.status} ${body.slice(0, 80)}`);
        }
      } catch (error) {
        failures.push(String(error));
      }
      progress.done++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return failures;
}

function serviceEntry(name: string, path: string) {
  return { name, path, command: fixtureCommand(`--name=${name}`), idle_timeout: 120 };
}

Deno.test("proxy-daemon start, status, reload under load, stop; proxy-status", async (t) => {
  const d = await daemonDir("daemon_cli_");
  const port = freePort();
  const token = randomToken();
  const auth = { authorization: `Bearer ${token}` };
  const base = `http://127.0.0.1:${port}`;
  const writeConfig = (services: Record<string, unknown>[]) =>
    Deno.writeTextFile(
      d.config,
      stringify({
        global: {
          bearer_token: token,
          listen_host: "127.0.0.1",
          listen_http: port,
          acme_webroot: join(d.dir, "acme"),
          shutdown_grace: 3,
        },
        services,
      }),
    );
  const statusCli = (args: string[], env: Record<string, string> = {}) =>
    runCli(
      ["--allow-net=127.0.0.1", `--allow-read=${d.dir}`, "--allow-env"],
      ["proxy-status", ...args],
      env,
    );
  let pid = 0;
  try {
    await writeConfig([serviceEntry("app", "/app")]);

    await t.step("start runs the daemon detached and reports its pid", async () => {
      const started = await d.daemon("start");
      assert.equal(started.code, 0, started.stderr);
      const match = /^started \(pid (\d+)\), log: (.+)$/m.exec(started.stdout);
      assert.ok(match, started.stdout);
      pid = Number(match[1]);
      assert.equal(match[2], d.log);
      assert.equal((await Deno.readTextFile(d.pid)).trim(), String(pid));
      assert.equal(await processGone(pid), false);
      const response = await fetch(`${base}/app/`, { headers: auth });
      assert.equal(response.status, 200);
      assert.equal(await response.text(), "ok");
    });

    await t.step("status: exit 0, running with the pid", async () => {
      const status = await d.daemon("status");
      assert.equal(status.code, 0, status.stderr);
      assert.match(status.stdout, new RegExp(`^running \\(pid ${pid}\\), up \\d+s$`, "m"));
    });

    await t.step("start again says it is already running", async () => {
      const again = await d.daemon("start");
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, new RegExp(`already running \\(pid ${pid}\\)`));
      assert.equal((await Deno.readTextFile(d.pid)).trim(), String(pid));
    });

    await t.step("reload adds a route without losing a request under load", async () => {
      const logBefore = (await d.logLines()).length;
      // At least 2,000 requests at concurrency 20, and at least 200 after the reload was
      // applied, however fast this machine is; never more than 20,000.
      const progress = { done: 0 };
      let reloadedAt = -1;
      const enough = () =>
        progress.done >= 20_000 ||
        (progress.done >= 2000 && reloadedAt >= 0 && progress.done >= reloadedAt + 200);
      const loop = requestLoop(`${base}/app/`, auth, 20, enough, progress);
      await waitFor("the loop to get going", () => progress.done >= 100);
      await writeConfig([serviceEntry("app", "/app"), serviceEntry("two", "/two")]);
      const reload = await d.daemon("reload");
      assert.equal(reload.code, 0, reload.stderr);
      assert.match(reload.stdout, /reload requested/);
      await d.waitForLog("configuration reloaded", logBefore);
      reloadedAt = progress.done;
      const failures = await loop;
      assert.deepEqual(failures, []);
      assert.ok(progress.done >= 2000 && progress.done < 20_000 + 20, `${progress.done} requests`);
      assert.ok(progress.done >= reloadedAt + 200, "requests ran after the reload");
      const two = await fetch(`${base}/two/`, { headers: auth });
      assert.equal(two.status, 200);
      assert.equal(two.headers.get("x-fixture-name"), "two");
      await two.body?.cancel();
      assert.equal(await processGone(pid), false);
    });

    await t.step(
      "an invalid config on reload is rejected and the old one keeps serving",
      async () => {
        const logBefore = (await d.logLines()).length;
        await Deno.writeTextFile(
          d.config,
          stringify({
            global: { bearer_token: token, listen_host: "127.0.0.1", listen_http: port },
            services: [{ name: "broken", path: "/app" }], // neither image, command nor url
          }),
        );
        // The CLI validates before signalling: exit 1 with the positioned error, nothing sent.
        const reload = await d.daemon("reload");
        assert.equal(reload.code, 1);
        assert.match(reload.stderr, /needs one of image, command or url/);
        // A bare SIGHUP (systemd's ExecReload) reaches the daemon, which rejects the file itself.
        await signal(pid, "HUP");
        const rejected = await d.waitForLog(
          "reload rejected; keeping the running configuration",
          logBefore,
        );
        assert.match(JSON.stringify(rejected.errors), /needs one of image, command or url/);
        assert.ok(
          !(await d.logLines()).slice(logBefore).some((l) => l.msg === "configuration reloaded"),
        );
        for (const [path, name] of [["/app/", "app"], ["/two/", "two"]]) {
          const response = await fetch(base + path, { headers: auth });
          assert.equal(response.status, 200, path);
          assert.equal(response.headers.get("x-fixture-name"), name);
          await response.body?.cancel();
        }
        await writeConfig([serviceEntry("app", "/app"), serviceEntry("two", "/two")]);
      },
    );

    await t.step("proxy-status prints a table with the service rows", async () => {
      const result = await statusCli(["--server-url", base, "--bearer-token", token]);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /^NAME\s+/m);
      assert.match(result.stdout, /^app\s+\/app\s+.*running/m);
      assert.match(result.stdout, /^two\s+\/two\s+/m);
      assert.ok(!result.stdout.includes(CLEAR_SCREEN));
    });

    await t.step("proxy-status --json prints the raw document", async () => {
      const result = await statusCli(["--server-url", base, "--bearer-token", token, "--json"]);
      assert.equal(result.code, 0, result.stderr);
      const doc = JSON.parse(result.stdout);
      const direct = await (await fetch(`${base}/proxy/status`, { headers: auth })).json();
      assert.deepEqual(Object.keys(doc).sort(), Object.keys(direct).sort());
      assert.deepEqual(doc.services.map((s: { name: string }) => s.name), ["app", "two"]);
      assert.equal(doc.services[0].state, "running");
      assert.equal(doc.certificate, null);
      assert.equal(doc.version, direct.version);
    });

    await t.step("proxy-status: wrong token → exit 1, one line naming 401", async () => {
      const result = await statusCli(["--server-url", base, "--bearer-token", "wrong"]);
      assert.equal(result.code, 1);
      assert.equal(result.stdout, "");
      assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
      assert.match(result.stderr, /401/);
    });

    await t.step("proxy-status: a dead address → exit 1 connection refused", async () => {
      const dead = `http://127.0.0.1:${freePort()}`;
      const result = await statusCli(["--server-url", dead, "--bearer-token", token]);
      assert.equal(result.code, 1);
      assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
      assert.match(result.stderr, /connection refused/);
    });

    await t.step("proxy-status: a missing token is a usage error (exit 2)", async () => {
      assert.equal(Deno.env.get("PROXY_BEARER_TOKEN"), undefined, "test env must not set it");
      const result = await statusCli(["--server-url", base]);
      assert.equal(result.code, 2);
      assert.match(result.stderr, /bearer-token/);
      const fromEnv = await statusCli(["--server-url", base], { PROXY_BEARER_TOKEN: token });
      assert.equal(fromEnv.code, 0, fromEnv.stderr);
    });

    await t.step("proxy-status --config reads the token and the address", async () => {
      const result = await statusCli(["--config", d.config]);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /^app\s+\/app/m);
    });

    await t.step("proxy-status --follow redraws", async () => {
      const child = new Deno.Command("deno", {
        args: [
          "run",
          "--quiet",
          "--allow-net=127.0.0.1",
          "--allow-env",
          MAIN,
          "proxy-status",
          "--server-url",
          base,
          "--bearer-token",
          token,
          "--follow",
          "--interval",
          "0.2",
        ],
        cwd: ROOT,
        env: { NO_COLOR: "1" },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const output = new Response(child.stdout).text();
      const errors = new Response(child.stderr).text();
      let text = "";
      try {
        // Poll the frames through the log: every frame is a /proxy/status request.
        const deadline = Date.now() + 10_000;
        while (Date.now() < deadline) {
          const frames = (await d.logLines()).filter((l) =>
            l.msg === "request" && l.path === "/proxy/status"
          ).length;
          if (frames >= 5) break;
          await new Promise((r) => setTimeout(r, 100));
        }
        await new Promise((r) => setTimeout(r, 700));
      } finally {
        child.kill("SIGTERM");
        await child.status;
        text = await output;
        await errors;
      }
      const frames = text.split(CLEAR_SCREEN).filter((f) => f.includes("NAME"));
      assert.ok(frames.length >= 2, `frames: ${frames.length}\n${text}`);
      for (const frame of frames) assert.match(frame, /^app\s+\/app/m);
    });

    await t.step("stop: exit 0, the daemon and its service children are gone", async () => {
      const children = await childPids(pid);
      assert.ok(children.length >= 2, `service children of ${pid}: ${children}`);
      const stopped = await d.daemon("stop");
      assert.equal(stopped.code, 0, stopped.stderr);
      assert.equal(stopped.stdout.trim(), "stopped");
      assert.equal(await processGone(pid), true);
      for (const child of children) assert.equal(await processGone(child), true, `child ${child}`);
      await assert.rejects(Deno.stat(d.pid), Deno.errors.NotFound);
      await assert.rejects(fetch(`${base}/app/`, { headers: auth }));
      const log = await d.logLines();
      assert.ok(log.some((l) => l.msg === "stopped"), "graceful drain logged");
    });

    await t.step("stop again: not running, exit 0; status: exit 3", async () => {
      const again = await d.daemon("stop");
      assert.equal(again.code, 0, again.stderr);
      assert.equal(again.stdout.trim(), "not running");
      const status = await d.daemon("status");
      assert.equal(status.code, 3);
      assert.equal(status.stdout.trim(), "not running");
      const reload = await d.daemon("reload");
      assert.equal(reload.code, 1);
      assert.match(reload.stderr, /not running/);
    });

    await t.step("a stale pid file is detected, removed, and start proceeds", async () => {
      const dead = new Deno.Command("ps", { args: ["-o", "pid="], stdout: "null" }).spawn();
      await dead.status;
      assert.equal(await processGone(dead.pid), true);
      await Deno.writeTextFile(d.pid, `${dead.pid}\n`);
      const status = await d.daemon("status");
      assert.equal(status.code, 3);
      assert.match(status.stdout, /stale pid file/);
      await assert.rejects(Deno.stat(d.pid), Deno.errors.NotFound);

      await Deno.writeTextFile(d.pid, `${dead.pid}\n`);
      const started = await d.daemon("start");
      assert.equal(started.code, 0, started.stderr);
      const match = /^started \(pid (\d+)\)/m.exec(started.stdout);
      assert.ok(match, started.stdout);
      pid = Number(match[1]);
      assert.notEqual(pid, dead.pid);
      const stopped = await d.daemon("stop");
      assert.equal(stopped.stdout.trim(), "stopped");
      assert.equal(await processGone(pid), true);
    });
  } finally {
    await killLeftover(d.pid);
    await Deno.remove(d.dir, { recursive: true });
  }
});

Deno.test("certificate files: HTTPS serves them, a replacement is served without a restart; proxy-status --ca-cert", async (t) => {
  const d = await daemonDir("daemon_tls_");
  const httpPort = freePort();
  const httpsPort = freePort();
  const token = randomToken();
  // Outside the config's folder, like /etc/letsencrypt/live/<domain> beside /etc/proxy.
  const certs = await Deno.makeTempDir({ prefix: "daemon_tls_certs_" });
  const certFile = join(certs, "fullchain.pem");
  const keyFile = join(certs, "privkey.pem");
  let client: Deno.HttpClient | undefined;
  try {
    const ca = await makeCa(d.dir);
    const sans = ["DNS:localhost", "IP:127.0.0.1"];
    const first = await makeLeaf(d.dir, ca, sans);
    await Deno.writeTextFile(certFile, first.cert);
    await Deno.writeTextFile(keyFile, first.key, { mode: 0o600 });
    await Deno.writeTextFile(
      d.config,
      stringify({
        global: {
          bearer_token: token,
          listen_host: "127.0.0.1",
          listen_http: httpPort,
          listen_https: httpsPort,
          acme_webroot: join(d.dir, "acme"),
          tls_certfile: certFile,
          tls_keyfile: keyFile,
          shutdown_grace: 3,
        },
        services: [serviceEntry("app", "/app")],
      }),
    );
    client = Deno.createHttpClient({ caCerts: [ca.pem] });
    const https = `https://127.0.0.1:${httpsPort}`;
    let pid = 0;

    await t.step("HTTPS serves the configured files", async () => {
      const started = await d.daemon("start");
      assert.equal(started.code, 0, started.stderr);
      pid = Number(/pid (\d+)/.exec(started.stdout)![1]);
      await d.waitForLog("listening");
      await waitFor(
        "https listening",
        async () => {
          const lines = await d.logLines();
          const failed = lines.find((l) => l.msg === "no certificate: serving HTTP only");
          if (failed) assert.fail(`HTTPS did not start: ${JSON.stringify(failed)}`);
          return lines.some((l) => l.msg === "listening" && l.listener === "https");
        },
      );
      assert.equal((await probeTls(httpsPort, "localhost", ca.pem)).serial, first.serial);
      const response = await fetch(`${https}/app/`, {
        client,
        headers: { authorization: `Bearer ${token}` },
      });
      assert.equal(response.status, 200, await d.logLines().then((l) => JSON.stringify(l)));
      assert.equal(await response.text(), "ok");
      // Plain HTTP redirects to the HTTPS port.
      const redirect = await fetch(`http://127.0.0.1:${httpPort}/app/x?y=1`, {
        redirect: "manual",
      });
      await redirect.body?.cancel();
      assert.equal(redirect.status, 308);
      assert.equal(redirect.headers.get("location"), `${https}/app/x?y=1`);
    });

    await t.step("replacing the files swaps the served certificate without a restart", async () => {
      const second = await makeLeaf(d.dir, ca, sans);
      assert.notEqual(second.serial, first.serial);
      // Atomic replacement, as certbot or an operator's script would do it.
      await Deno.writeTextFile(`${keyFile}.new`, second.key, { mode: 0o600 });
      await Deno.writeTextFile(`${certFile}.new`, second.cert);
      await Deno.rename(`${keyFile}.new`, keyFile);
      await Deno.rename(`${certFile}.new`, certFile);
      await waitFor(
        "the new serial to be served",
        async () => (await probeTls(httpsPort, "localhost", ca.pem)).serial === second.serial,
        10_000,
      );
      assert.equal((await d.daemon("status")).stdout.match(/pid (\d+)/)?.[1], String(pid));
      const response = await fetch(`${https}/proxy/status`, {
        client,
        headers: { authorization: `Bearer ${token}` },
      });
      assert.equal(response.status, 200);
      const doc = await response.json();
      assert.equal(doc.certificate.serial, second.serial);
      assert.deepEqual(doc.certificate.names, ["localhost"]);
    });

    await t.step(
      "proxy-status --ca-cert trusts the private CA; without it, a TLS error",
      async () => {
        const flags = ["--allow-net=127.0.0.1", `--allow-read=${d.dir}`, "--allow-env"];
        const args = ["proxy-status", "--server-url", https, "--bearer-token", token];
        const trusted = await runCli(flags, [...args, "--ca-cert", ca.certFile]);
        assert.equal(trusted.code, 0, trusted.stderr);
        assert.match(trusted.stdout, /^app\s+\/app/m);
        assert.match(trusted.stdout, /certificate: localhost/);
        const untrusted = await runCli(flags, args);
        assert.equal(untrusted.code, 1);
        assert.equal(untrusted.stderr.trim().split("\n").length, 1, untrusted.stderr);
        assert.match(untrusted.stderr, /TLS|certificate/i);
      },
    );

    await t.step("stop", async () => {
      const stopped = await d.daemon("stop");
      assert.equal(stopped.code, 0, stopped.stderr);
      assert.equal(stopped.stdout.trim(), "stopped");
      assert.equal(await processGone(pid), true);
    });
  } finally {
    client?.close();
    await killLeftover(d.pid);
    await Deno.remove(d.dir, { recursive: true });
    await Deno.remove(certs, { recursive: true });
  }
});
