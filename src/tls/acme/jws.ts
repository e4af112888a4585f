/**
 * JSON Web Signatures for ACME (RFC 7515 flattened JSON, RFC 8555 §6.2): ES256 on WebCrypto,
 * base64url, the RFC 7638 JWK thumbprint and the HTTP-01 key authorization. No permissions.
 *
 * @example
 * ```ts
 * const keys = await generateAccountKey();
 * const jwk = await publicJwk(keys.publicKey);
 * const body = await signJws(keys.privateKey, { jwk, nonce: "n", url: "https://ca/new-acct" }, {});
 * ```
 *
 * @module
 */

const encoder = new TextEncoder();

/** base64url without padding (RFC 7515 §2). */
export function base64url(data: Uint8Array | string): string {
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** Decodes base64url (padding optional). Throws `TypeError` on other characters. */
export function base64urlDecode(text: string): Uint8Array<ArrayBuffer> {
  if (!/^[A-Za-z0-9_-]*={0,2}$/.test(text)) {
    throw new TypeError(`Invalid base64url "${text.slice(0, 32)}"`);
  }
  const binary = atob(text.replaceAll("-", "+").replaceAll("_", "/").replace(/=+$/, ""));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

/** ECDSA P-256 parameters for WebCrypto. */
export const P256: EcKeyGenParams = { name: "ECDSA", namedCurve: "P-256" };
const ES256_SIGN: EcdsaParams = { name: "ECDSA", hash: "SHA-256" };

/** Generates an extractable ES256 (ECDSA P-256) key pair. */
export function generateAccountKey(): Promise<CryptoKeyPair> {
  return crypto.subtle.generateKey(P256, true, ["sign", "verify"]);
}

/** The public JWK reduced to the members a JWS header and thumbprint use: `{crv, kty, x, y}`. */
export async function publicJwk(key: CryptoKey): Promise<JsonWebKey> {
  const { crv, kty, x, y } = await crypto.subtle.exportKey("jwk", key);
  return { crv, kty, x, y };
}

/** The members RFC 7638 §3.2 requires per key type, in lexicographic order. */
const REQUIRED_MEMBERS: Record<string, readonly (keyof JsonWebKey)[]> = {
  EC: ["crv", "kty", "x", "y"],
  RSA: ["e", "kty", "n"],
  oct: ["k", "kty"],
};

/**
 * RFC 7638 JWK thumbprint (SHA-256, base64url) over the required members only.
 *
 * @example
 * ```ts
 * await jwkThumbprint({ kty: "RSA", e: "AQAB", n: "0vx7…" }); // "NzbLsXh8…"
 * ```
 */
export async function jwkThumbprint(jwk: JsonWebKey): Promise<string> {
  const members = REQUIRED_MEMBERS[jwk.kty ?? ""];
  if (!members) throw new TypeError(`Unsupported JWK key type "${jwk.kty}"`);
  const canonical: Record<string, unknown> = {};
  for (const member of members) {
    if (typeof jwk[member] !== "string") {
      throw new TypeError(`JWK of type "${jwk.kty}" lacks member "${member}"`);
    }
    canonical[member] = jwk[member];
  }
  const digest = await crypto.subtle.digest("SHA-256", encoder.encode(JSON.stringify(canonical)));
  return base64url(new Uint8Array(digest));
}

/** RFC 8555 §8.1 key authorization: `token || "." || thumbprint(accountKey)`. */
export async function keyAuthorization(token: string, accountJwk: JsonWebKey): Promise<string> {
  return `${token}.${await jwkThumbprint(accountJwk)}`;
}

/** Protected header inputs: exactly one of `jwk` (newAccount, revoke) or `kid` (afterwards). */
export type JwsKeyRef = { jwk: JsonWebKey; kid?: never } | { kid: string; jwk?: never };

/** A flattened JWS JSON serialization (RFC 7515 §7.2.2). */
export interface FlattenedJws {
  /** base64url of the protected header JSON. */
  protected: string;
  /** base64url of the payload; empty for POST-as-GET. */
  payload: string;
  /** base64url of the raw r‖s ES256 signature. */
  signature: string;
}

/**
 * Signs an ACME request body with ES256. `payload` `null` makes a POST-as-GET (empty payload).
 *
 * @example
 * ```ts
 * await signJws(key, { kid: accountUrl, nonce, url }, null); // POST-as-GET
 * ```
 */
export async function signJws(
  privateKey: CryptoKey,
  header: JwsKeyRef & { nonce: string; url: string },
  payload: unknown,
): Promise<FlattenedJws> {
  const protectedHeader = base64url(JSON.stringify({ alg: "ES256", ...header }));
  const encodedPayload = payload === null ? "" : base64url(JSON.stringify(payload));
  const signature = await crypto.subtle.sign(
    ES256_SIGN,
    privateKey,
    encoder.encode(`${protectedHeader}.${encodedPayload}`),
  );
  return {
    protected: protectedHeader,
    payload: encodedPayload,
    signature: base64url(new Uint8Array(signature)),
  };
}
