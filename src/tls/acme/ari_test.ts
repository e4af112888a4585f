import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { ariCertId, parseRenewalInfo } from "./ari.ts";
import { base64url } from "./jws.ts";
import { EC_KEY, makeCa, openssl } from "../../../tests/helpers/openssl.ts";

const hex = (text: string) => Uint8Array.from(text.match(/[0-9A-F]{2}/gi)!, (h) => parseInt(h, 16));

Deno.test("ariCertId is base64url(AKI keyid).base64url(serial) as openssl reads them", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ari-" });
  try {
    const ca = await makeCa(dir);
    await openssl(["req", ...EC_KEY, "-keyout", "l.key", "-out", "l.csr", "-subj", "/CN=l"], dir);
    await Deno.writeTextFile(
      `${dir}/ext`,
      "authorityKeyIdentifier=keyid\nsubjectAltName=DNS:l.test\n",
    );
    // A serial with the high bit set needs a leading zero byte in DER: that byte belongs in the id.
    await openssl([
      "x509",
      "-req",
      "-in",
      "l.csr",
      "-CA",
      ca.certFile,
      "-CAkey",
      ca.keyFile,
      "-set_serial",
      "0x87654321",
      "-extfile",
      "ext",
      "-out",
      "l.pem",
    ], dir);
    const aki = await openssl(
      ["x509", "-in", "l.pem", "-noout", "-ext", "authorityKeyIdentifier"],
      dir,
    );
    const keyId = hex(aki.split("\n").slice(1).join("").replace(/keyid:/i, ""));
    assert.equal(keyId.length, 20);
    const der = new Uint8Array(new X509Certificate(await Deno.readTextFile(`${dir}/l.pem`)).raw);
    assert.equal(
      ariCertId(der),
      `${base64url(keyId)}.${base64url(new Uint8Array([0, 0x87, 0x65, 0x43, 0x21]))}`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("parseRenewalInfo reads suggestedWindow and rejects nonsense", () => {
  const window = parseRenewalInfo({
    suggestedWindow: { start: "2026-01-01T00:00:00Z", end: "2026-01-02T00:00:00Z" },
  });
  assert.equal(window.start.toISOString(), "2026-01-01T00:00:00.000Z");
  assert.throws(() => parseRenewalInfo({ suggestedWindow: { start: "x", end: "y" } }), TypeError);
  assert.throws(
    () =>
      parseRenewalInfo({
        suggestedWindow: { start: "2026-01-02T00:00:00Z", end: "2026-01-01T00:00:00Z" },
      }),
    TypeError,
  );
  assert.throws(() => parseRenewalInfo(null), TypeError);
});
