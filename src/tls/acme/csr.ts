/**
 * PKCS#10 certificate signing requests (RFC 2986) built by hand on the DER encoder: a P-256
 * key, CN = the first name, subjectAltName dNSName for every name, signed ecdsa-with-SHA256.
 * No permissions.
 *
 * @example
 * ```ts
 * const keys = await generateCertificateKey();
 * const der = await createCsr(keys, ["example.com", "www.example.com"]);
 * ```
 *
 * @module
 */

import {
  bitString,
  contextTag,
  integer,
  octetString,
  oid,
  sequence,
  set,
  utf8String,
} from "../der.ts";
import { P256 } from "./jws.ts";

const OID_COMMON_NAME = "2.5.4.3";
const OID_EXTENSION_REQUEST = "1.2.840.113549.1.9.14";
const OID_SUBJECT_ALT_NAME = "2.5.29.17";
const OID_ECDSA_WITH_SHA256 = "1.2.840.10045.4.3.2";

/** Generates an extractable P-256 key pair for a certificate. */
export function generateCertificateKey(): Promise<CryptoKeyPair> {
  return crypto.subtle.generateKey(P256, true, ["sign", "verify"]);
}

/** Converts WebCrypto's raw r‖s ECDSA signature into the DER `ECDSA-Sig-Value` X.509 wants. */
export function ecdsaSignatureToDer(raw: Uint8Array): Uint8Array<ArrayBuffer> {
  if (raw.length % 2 !== 0) {
    throw new RangeError(`Invalid raw ECDSA signature length ${raw.length}`);
  }
  const half = raw.length / 2;
  return sequence(integer(raw.subarray(0, half)), integer(raw.subarray(half)));
}

/**
 * Builds a DER CSR for `names` (the first is the subject CN; all go into subjectAltName).
 * Throws `TypeError` when `names` is empty or a name is not a plain DNS name.
 */
export async function createCsr(
  keys: CryptoKeyPair,
  names: readonly string[],
): Promise<Uint8Array<ArrayBuffer>> {
  if (names.length === 0) throw new TypeError("Cannot build a CSR without a name");
  for (const name of names) {
    if (!/^(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.?$/.test(name) || name.length > 253) {
      throw new TypeError(`Invalid DNS name "${name}" for a CSR`);
    }
  }
  const encoder = new TextEncoder();
  const subject = sequence(set(sequence(oid(OID_COMMON_NAME), utf8String(names[0]))));
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", keys.publicKey));
  const generalNames = sequence(...names.map((n) => contextTag(2, encoder.encode(n), false)));
  const extensions = sequence(sequence(oid(OID_SUBJECT_ALT_NAME), octetString(generalNames)));
  const attributes = contextTag(
    0,
    sequence(oid(OID_EXTENSION_REQUEST), set(extensions)),
    true,
  );
  const info = sequence(integer(0), subject, spki, attributes);
  const raw = new Uint8Array(
    await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, keys.privateKey, info),
  );
  return sequence(
    info,
    sequence(oid(OID_ECDSA_WITH_SHA256)),
    bitString(ecdsaSignatureToDer(raw)),
  );
}

/** Exports a private key as PKCS#8 DER bytes (for `privkey.pem`). */
export async function exportPkcs8(key: CryptoKey): Promise<Uint8Array<ArrayBuffer>> {
  return new Uint8Array(await crypto.subtle.exportKey("pkcs8", key));
}
