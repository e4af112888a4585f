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
import { AcmeClient } from "../src/tls/acme/client.ts";
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
});
