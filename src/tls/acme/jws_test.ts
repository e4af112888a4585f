import assert from "node:assert/strict";
import {
  base64url,
  base64urlDecode,
  generateAccountKey,
  jwkThumbprint,
  keyAuthorization,
  publicJwk,
  signJws,
} from "./jws.ts";

const decoder = new TextDecoder();

Deno.test("jwkThumbprint matches the RFC 7638 §3.1 example", async () => {
  const jwk: JsonWebKey = {
    kty: "RSA",
    n: "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECP" +
      "ebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY" +
      "368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0f" +
      "M4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
    e: "AQAB",
    alg: "RS256",
  };
  assert.equal(await jwkThumbprint(jwk), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
});

Deno.test("jwkThumbprint of an EC key hashes {crv,kty,x,y} in that order", async () => {
  const jwk = await publicJwk((await generateAccountKey()).publicKey);
  const expected = new Uint8Array(
    await crypto.subtle.digest(
      "SHA-256",
      new TextEncoder().encode(
        `{"crv":"P-256","kty":"EC","x":"${jwk.x}","y":"${jwk.y}"}`,
      ),
    ),
  );
  assert.equal(
    await jwkThumbprint({ ...jwk, key_ops: ["verify"], ext: true }),
    base64url(expected),
  );
  assert.equal(await keyAuthorization("tok", jwk), `tok.${base64url(expected)}`);
});

Deno.test("jwkThumbprint rejects unknown key types and missing members", async () => {
  await assert.rejects(jwkThumbprint({ kty: "OKP", x: "a" }), TypeError);
  await assert.rejects(jwkThumbprint({ kty: "EC", crv: "P-256", x: "a" }), /lacks member "y"/);
});

Deno.test("base64url round-trips without padding or +/", () => {
  const bytes = new Uint8Array([0xfb, 0xff, 0xbf, 0x00, 0x01]);
  assert.equal(base64url(bytes), "-_-_AAE");
  assert.deepEqual(base64urlDecode("-_-_AAE"), bytes);
  assert.equal(base64url("{}"), "e30");
  assert.throws(() => base64urlDecode("a+b"), TypeError);
});

Deno.test("signJws produces a flattened ES256 JWS that WebCrypto verifies", async () => {
  const keys = await generateAccountKey();
  const jwk = await publicJwk(keys.publicKey);
  const url = "https://ca.test/acme/new-acct";
  const jws = await signJws(keys.privateKey, { jwk, nonce: "n0nce", url }, {
    termsOfServiceAgreed: true,
  });
  const header = JSON.parse(decoder.decode(base64urlDecode(jws.protected)));
  assert.deepEqual(header, { alg: "ES256", jwk, nonce: "n0nce", url });
  assert.deepEqual(JSON.parse(decoder.decode(base64urlDecode(jws.payload))), {
    termsOfServiceAgreed: true,
  });
  const signature = base64urlDecode(jws.signature);
  assert.equal(signature.length, 64);
  const signed = new TextEncoder().encode(`${jws.protected}.${jws.payload}`);
  const verify = (data: Uint8Array<ArrayBuffer>) =>
    crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, keys.publicKey, signature, data);
  assert.equal(await verify(signed), true);
  signed[signed.length - 1] ^= 1;
  assert.equal(await verify(signed), false);
});

Deno.test("signJws with kid and null payload is a POST-as-GET", async () => {
  const keys = await generateAccountKey();
  const jws = await signJws(keys.privateKey, {
    kid: "https://ca.test/acct/1",
    nonce: "n",
    url: "u",
  }, null);
  assert.equal(jws.payload, "");
  const header = JSON.parse(decoder.decode(base64urlDecode(jws.protected)));
  assert.deepEqual(header, { alg: "ES256", kid: "https://ca.test/acct/1", nonce: "n", url: "u" });
});
