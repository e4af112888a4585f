/**
 * ACME end to end against pebble. One pebble per file (fixed ports): everything runs as steps
 * of one test, in order.
 *
 * deno test --allow-net=127.0.0.1,localhost --allow-read=/tmp --allow-write=/tmp \
 *   --allow-run=pebble,pebble-challtestsrv,openssl --allow-env=NODETOOL_REQUIRE_SERVICES \
 *   tests/acme_test.ts
 */
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { AcmeClient, AcmeError } from "../src/tls/acme/client.ts";
import { CertificateManager } from "../src/tls/certificates.ts";
import { listenTls, type TlsListener } from "../src/tls/listener.ts";
import { certificateInfo, type CertificatePair } from "../src/tls/store.ts";
import { createCsr, generateCertificateKey } from "../src/tls/acme/csr.ts";
import { generateAccountKey } from "../src/tls/acme/jws.ts";
import { ChallengeStore, createRedirectHandler } from "../src/tls/challenges.ts";
import { toPem } from "../src/tls/pem.ts";
import { pebbleAvailable, startPebble } from "./helpers/pebble.ts";
import { assertServiceAvailable, skipUnless } from "./helpers/services.ts";

const DOMAIN = "proxy.example.test";
const available = await pebbleAvailable();

/** `openssl verify` of the leaf of `fullchain` against `root`; returns openssl's output. */
async function verifyChain(dir: string, fullchain: string, root: string): Promise<string> {
  const blocks = fullchain.match(
    /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g,
  );
  assert.ok(blocks && blocks.length >= 2, "full chain has leaf and intermediate");
  await Deno.writeTextFile(`${dir}/root.pem`, root);
  await Deno.writeTextFile(`${dir}/leaf.pem`, blocks[0]);
  await Deno.writeTextFile(`${dir}/chain.pem`, blocks.slice(1).join(""));
  const { code, stdout, stderr } = await new Deno.Command("openssl", {
    args: ["verify", "-CAfile", "root.pem", "-untrusted", "chain.pem", "leaf.pem"],
    cwd: dir,
  }).output();
  const text = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
  assert.equal(code, 0, text);
  return text;
}

/** `global.acme` settings pointing at pebble. */
function acmeSettings(caBundle: string, storage: string, renewBeforeDays: number | null) {
  return {
    enabled: true,
    directory_url: "https://127.0.0.1:14000/dir",
    ca_bundle: caBundle,
    storage_dir: storage,
    renew_before_days: renewBeforeDays,
  };
}

/** Certificate changes a manager announced, with a way to wait for the n-th. */
function changeLog() {
  const pairs: CertificatePair[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  return {
    pairs,
    onChange(pair: CertificatePair) {
      pairs.push(pair);
      for (const w of waiters.filter((w) => pairs.length >= w.n)) w.resolve();
    },
    async waitFor(n: number, timeoutMs: number): Promise<void> {
      if (pairs.length >= n) return;
      const { promise, resolve } = Promise.withResolvers<void>();
      waiters.push({ n, resolve });
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no change #${n} in ${timeoutMs} ms`)),
          timeoutMs,
        );
      });
      try {
        await Promise.race([promise, timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/**
 * Connects with `openssl s_client`, verifying the chain against `rootFile` for `DOMAIN`, and
 * sends `request` when given. Returns the exit code and output (the served leaf is in it).
 */
async function sClient(port: number, rootFile: string, request?: string) {
  const child = new Deno.Command("openssl", {
    args: [
      "s_client",
      "-connect",
      `127.0.0.1:${port}`,
      "-servername",
      DOMAIN,
      "-verify_hostname",
      DOMAIN,
      "-CAfile",
      rootFile,
      "-verify_return_error",
      ...(request ? ["-quiet", "-ign_eof"] : []),
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  if (request) await writer.write(new TextEncoder().encode(request));
  await writer.close();
  const { code, stdout, stderr } = await child.output();
  const text = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
  return { code, text };
}

/** Serial of the leaf `openssl s_client` printed. */
function servedSerial(sClientOutput: string): string {
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(sClientOutput);
  assert.ok(pem, sClientOutput);
  return certificateInfo(pem[0]).serial;
}

Deno.test({ name: "ACME against pebble", ignore: skipUnless(available) }, async (t) => {
  assertServiceAvailable("pebble", available);
  const challenges = new ChallengeStore();
  let challengeHits = 0;
  const redirect = createRedirectHandler({ challenges, domain: DOMAIN });
  await using challengeServer = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request, info) => {
      challengeHits++;
      return redirect(request, info);
    },
  );
  await using pebble = await startPebble({ httpPort: challengeServer.addr.port });
  using httpClient = Deno.createHttpClient({ caCerts: [pebble.listenerCaPem] });

  await t.step(
    "the client issues a certificate whose chain verifies against pebble's root",
    async () => {
      const client = new AcmeClient({
        directoryUrl: pebble.directoryUrl,
        accountKey: await generateAccountKey(),
        contact: ["mailto:ops@example.test"],
        httpClient,
        pollIntervalMs: 100,
      });
      const keys = await generateCertificateKey();
      const tokens: string[] = [];
      const fullchain = await client.obtainCertificate([DOMAIN], await createCsr(keys, [DOMAIN]), {
        publish(token, keyAuthorization) {
          tokens.push(token);
          challenges.publish(token, keyAuthorization);
        },
        unpublish: (token) => challenges.unpublish(token),
      });
      assert.ok(challengeHits > 0, "pebble fetched the challenge");
      assert.equal(tokens.length, 1);
      assert.equal(challenges.get(tokens[0]), undefined, "the token is unpublished afterwards");
      const leaf = new X509Certificate(fullchain);
      assert.match(leaf.subjectAltName ?? "", new RegExp(`DNS:${DOMAIN.replaceAll(".", "\\.")}`));
      assert.match(await verifyChain(pebble.dir, fullchain, await pebble.root()), /leaf\.pem: OK/);
      const spki = new Uint8Array(await crypto.subtle.exportKey("spki", keys.publicKey));
      assert.equal(
        leaf.publicKey.export({ type: "spki", format: "pem" }),
        toPem("PUBLIC KEY", spki),
      );
    },
  );

  const storage = await Deno.makeTempDir({ prefix: "acme-store-" });
  await using _storage = { [Symbol.asyncDispose]: () => Deno.remove(storage, { recursive: true }) };
  const live = `${storage}/live/${DOMAIN}`;
  const accountFile = `${storage}/accounts/127.0.0.1:14000/account.json`;
  const newManager = (
    dir: string,
    renewBeforeDays: number | null,
    onChange: (pair: CertificatePair) => void,
    retry = { retryBaseMs: 60_000, retryCapMs: 60_000 },
  ) =>
    new CertificateManager({
      domain: DOMAIN,
      email: "ops@example.test",
      acme: acmeSettings(pebble.listenerCaFile, dir, renewBeforeDays),
      challenges,
      onChange,
      pollIntervalMs: 100,
      ...retry,
    });

  await t.step("the manager obtains a certificate into the certbot layout", async () => {
    const changes = changeLog();
    await using manager = newManager(storage, null, changes.onChange);
    assert.equal(await manager.start(), null, "nothing stored yet");
    await changes.waitFor(1, 20_000);
    const stored = {
      cert: await Deno.readTextFile(`${live}/fullchain.pem`),
      key: await Deno.readTextFile(`${live}/privkey.pem`),
    };
    assert.deepEqual(changes.pairs[0], stored);
    assert.equal((await Deno.stat(`${live}/privkey.pem`)).mode! & 0o777, 0o600);
    assert.equal((await Deno.stat(accountFile)).mode! & 0o777, 0o600);
    assert.match(await verifyChain(pebble.dir, stored.cert, await pebble.root()), /leaf\.pem: OK/);
    const info = certificateInfo(stored.cert);
    const status = manager.status();
    assert.ok(status);
    assert.deepEqual(status.names, [DOMAIN]);
    assert.equal(status.serial, info.serial);
    assert.equal(status.not_after, info.notAfter.toISOString());
    assert.equal(status.last_error, null);
    // Pebble's default lifetime is years: renewal is when a third is left.
    const third = info.notAfter.getTime() -
      (info.notAfter.getTime() - info.notBefore.getTime()) / 3;
    assert.ok(status.next_renewal);
    assert.ok(Math.abs(Date.parse(status.next_renewal) - third) < 1000, status.next_renewal);
  });

  await t.step("a restart reuses the stored account and certificate", async () => {
    const accountBefore = await Deno.readTextFile(accountFile);
    const certBefore = await Deno.readTextFile(`${live}/fullchain.pem`);
    const changes = changeLog();
    await using manager = newManager(storage, null, changes.onChange);
    assert.deepEqual((await manager.start())?.cert, certBefore);
    await manager.check();
    assert.equal(changes.pairs.length, 0, "no new certificate");
    assert.equal(await Deno.readTextFile(`${live}/fullchain.pem`), certBefore);
    assert.equal(await Deno.readTextFile(accountFile), accountBefore);
  });

  await t.step("renewal before expiry swaps the served certificate under a stream", async () => {
    await pebble.restart({ certificateValidityPeriod: 40 });
    const dir = await Deno.makeTempDir({ prefix: "acme-renew-", dir: storage });
    const rootFile = `${dir}/root.pem`;
    await Deno.writeTextFile(rootFile, await pebble.root());
    const changes = changeLog();
    const served: { https?: TlsListener } = {};
    // Renew 37 s before expiry of a 40 s certificate: about 3 s after each issuance.
    await using manager = newManager(dir, 37 / 86_400, (pair) => {
      changes.onChange(pair);
      served.https?.setCertificate(pair);
    });
    await manager.start();
    await changes.waitFor(1, 20_000);
    const chunk = "y".repeat(512) + "\n";
    const https = listenTls({ hostname: "127.0.0.1", port: 0, ...changes.pairs[0] }, (request) => {
      if (new URL(request.url).pathname !== "/stream") return new Response("ok");
      let sent = 0;
      return new Response(
        new ReadableStream({
          async pull(controller) {
            await new Promise((r) => setTimeout(r, 50));
            controller.enqueue(new TextEncoder().encode(chunk));
            if (++sent === 100) controller.close();
          },
        }),
      );
    });
    served.https = https;
    try {
      const port = Number(https.url.port);
      const first = await sClient(port, rootFile);
      assert.equal(first.code, 0, first.text);
      const firstSerial = servedSerial(first.text);
      assert.equal(firstSerial, certificateInfo(changes.pairs[0].cert).serial);
      // A 5 s stream on the first certificate, across the renewal.
      const stream = sClient(
        port,
        rootFile,
        `GET /stream HTTP/1.1\r\nHost: ${DOMAIN}\r\nConnection: close\r\n\r\n`,
      );
      await changes.waitFor(2, 20_000);
      const renewedSerial = certificateInfo(changes.pairs[1].cert).serial;
      assert.notEqual(renewedSerial, firstSerial);
      const next = await sClient(port, rootFile);
      assert.equal(next.code, 0, next.text);
      assert.equal(
        servedSerial(next.text),
        renewedSerial,
        "new connections get the renewed certificate",
      );
      const streamed = await stream;
      assert.equal(streamed.code, 0, streamed.text.slice(0, 500));
      assert.equal(streamed.text.split(chunk).length - 1, 100, "the stream completed");
    } finally {
      await manager.close();
      assert.equal(await https.drain(5_000), true);
    }
  });

  await t.step("with the CA down, renewal backs off and the old certificate stays", async () => {
    const dir = await Deno.makeTempDir({ prefix: "acme-down-", dir: storage });
    const changes = changeLog();
    {
      await using manager = newManager(dir, null, changes.onChange);
      await manager.start();
      await changes.waitFor(1, 20_000);
    }
    const serial = certificateInfo(changes.pairs[0].cert).serial;
    await pebble.stop();
    // Always due (renew 3650 days before expiry); retries 200 ms, 400 ms, capped at 800 ms.
    await using manager = newManager(dir, 3650, changes.onChange, {
      retryBaseMs: 200,
      retryCapMs: 800,
    });
    await manager.start();
    await new Promise((r) => setTimeout(r, 1_500));
    const status = manager.status();
    assert.ok(status?.last_error, "the failure is reported");
    assert.equal(status.serial, serial, "the old certificate is still served");
    assert.equal(manager.current?.cert, changes.pairs[0].cert);
    assert.equal(changes.pairs.length, 1);
    const retryIn = Date.parse(status.next_renewal ?? "") - Date.now();
    assert.ok(retryIn > 0 && retryIn <= 800, `next retry in ${retryIn} ms`);
    // The CA comes back: the next retry renews.
    await pebble.restart({ certificateValidityPeriod: 0 });
    await changes.waitFor(2, 20_000);
    assert.notEqual(certificateInfo(changes.pairs[1].cert).serial, serial);
    assert.equal(manager.status()?.last_error, null);
  });

  await t.step("badNonce rejections are retried", async () => {
    await pebble.restart({ nonceReject: 50 });
    const issue = async (badNonceRetries?: number) => {
      const client = new AcmeClient({
        directoryUrl: pebble.directoryUrl,
        accountKey: await generateAccountKey(),
        httpClient,
        pollIntervalMs: 100,
        badNonceRetries,
      });
      const csr = await createCsr(await generateCertificateKey(), [DOMAIN]);
      return await client.obtainCertificate([DOMAIN], csr, challenges);
    };
    // About a dozen signed requests at 50 % rejection: without retries one is all but sure
    // to fail (1 − 2⁻¹²); with them, issuance succeeds.
    await assert.rejects(issue(0), (e) => e instanceof AcmeError && e.type.endsWith(":badNonce"));
    assert.match(await issue(), /BEGIN CERTIFICATE/);
  });
});
