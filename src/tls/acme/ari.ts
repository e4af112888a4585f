/**
 * ACME Renewal Information (RFC 9773): the certificate identifier a client asks about, and the
 * suggested renewal window the server answers with. No permissions.
 *
 * @example
 * ```ts
 * const id = ariCertId(new X509Certificate(leafPem).raw);
 * // GET `${directory.renewalInfo}/${id}` → parseRenewalInfo(json)
 * ```
 *
 * @module
 */

import { readChildren, readElement } from "../der.ts";
import { base64url } from "./jws.ts";

/** A renewal window the server suggests: renew at a random moment within it. */
export interface RenewalWindow {
  /** Earliest suggested renewal time. */
  start: Date;
  /** Latest suggested renewal time. */
  end: Date;
}

const AKI_OID = new Uint8Array([0x55, 0x1d, 0x23]); // 2.5.29.35 without tag and length

/**
 * The RFC 9773 §4.1 CertID of a DER certificate:
 * `base64url(authorityKeyIdentifier.keyIdentifier) "." base64url(serial content bytes)`.
 * Throws `TypeError` when the certificate has no authority key identifier.
 */
export function ariCertId(certificateDer: Uint8Array): string {
  const certificate = readElement(certificateDer);
  const tbs = readChildren(readChildren(certificate.content)[0].content);
  const [serial] = tbs.filter((e) => e.tag === 0x02);
  const extensionsWrapper = tbs.find((e) => e.tag === 0xa3);
  const extensions = extensionsWrapper
    ? readChildren(readElement(extensionsWrapper.content).content)
    : [];
  for (const extension of extensions) {
    const [id, ...rest] = readChildren(extension.content);
    if (id.tag !== 0x06 || !sameBytes(id.content, AKI_OID)) continue;
    const value = rest[rest.length - 1]; // after the optional `critical` BOOLEAN
    const aki = readChildren(readElement(value.content).content);
    const keyId = aki.find((e) => e.tag === 0x80);
    if (keyId) return `${base64url(keyId.content)}.${base64url(serial.content)}`;
  }
  throw new TypeError("Certificate has no authority key identifier: cannot ask for ARI");
}

/** Validates a renewalInfo response body. Throws `TypeError` when it is malformed. */
export function parseRenewalInfo(body: unknown): RenewalWindow {
  const window = (body as { suggestedWindow?: { start?: unknown; end?: unknown } } | null)
    ?.suggestedWindow;
  const start = new Date(String(window?.start));
  const end = new Date(String(window?.end));
  if (isNaN(start.getTime()) || isNaN(end.getTime()) || end < start) {
    throw new TypeError(`Invalid ARI suggestedWindow ${JSON.stringify(window)}`);
  }
  return { start, end };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
