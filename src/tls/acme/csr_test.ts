import assert from "node:assert/strict";
import { toPem } from "../pem.ts";
import { createCsr, ecdsaSignatureToDer, generateCertificateKey } from "./csr.ts";

/** Runs `openssl req` on a PEM CSR; needs --allow-run=openssl. */
async function opensslReq(pem: string, ...args: string[]) {
  const child = new Deno.Command("openssl", {
    args: ["req", "-noout", ...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(pem));
  await writer.close();
  const { code, stdout, stderr } = await child.output();
  const decoder = new TextDecoder();
  return { code, out: decoder.decode(stdout) + decoder.decode(stderr) };
}

Deno.test("createCsr: openssl verifies the signature and shows CN and SANs", async () => {
  const keys = await generateCertificateKey();
  const pem = toPem(
    "CERTIFICATE REQUEST",
    await createCsr(keys, ["example.test", "www.example.test"]),
  );
  const verified = await opensslReq(pem, "-verify");
  assert.equal(verified.code, 0, verified.out);
  assert.match(verified.out, /self-signature verify OK/i);
  const text = await opensslReq(pem, "-text");
  assert.equal(text.code, 0, text.out);
  assert.match(text.out, /Subject: CN\s*=\s*example\.test/);
  assert.match(text.out, /DNS:example\.test, DNS:www\.example\.test/);
  assert.match(text.out, /ecdsa-with-SHA256/);
  assert.match(text.out, /NIST CURVE: P-256|prime256v1/);
});

Deno.test("createCsr: a tampered CSR fails openssl's verification", async () => {
  const der = await createCsr(await generateCertificateKey(), ["example.test"]);
  // The CN value sits inside the signed info; flip one of its letters.
  const at = new TextDecoder("latin1").decode(der).indexOf("example.test");
  der[at] ^= 0x01;
  const verified = await opensslReq(toPem("CERTIFICATE REQUEST", der), "-verify");
  // OpenSSL 3.0 exits 0 either way: the verdict is in the output.
  assert.doesNotMatch(verified.out, /verify OK/i);
  assert.match(verified.out, /verify failure/i);
});

Deno.test("createCsr rejects empty and malformed names", async () => {
  const keys = await generateCertificateKey();
  await assert.rejects(createCsr(keys, []), TypeError);
  await assert.rejects(createCsr(keys, ["bad name"]), /Invalid DNS name "bad name"/);
});

Deno.test("ecdsaSignatureToDer pads high-bit integers and strips leading zeros", () => {
  const raw = new Uint8Array(64);
  raw[0] = 0x80; // r has its high bit set → needs a 0x00 pad
  raw[63] = 0x05; // s is 5 with 31 leading zeros → a one-byte INTEGER
  const der = ecdsaSignatureToDer(raw);
  assert.deepEqual([...der.subarray(0, 5)], [0x30, 38, 0x02, 33, 0x00]);
  assert.deepEqual([...der.subarray(-3)], [0x02, 1, 0x05]);
});
