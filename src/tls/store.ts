/**
 * Certificates and the ACME account key on disk, in certbot's layout:
 * `<storage>/live/<domain>/{fullchain.pem,privkey.pem}` and
 * `<storage>/accounts/<directory host>/account.json` (a private JWK). Writes are atomic
 * (temp file + rename), keys mode 0600; `<storage>/locks/<domain>.lock` stops two processes
 * from renewing at once.
 *
 * Needs `--allow-read` and `--allow-write` on the storage directory.
 *
 * @example
 * ```ts
 * const store = new CertificateStore("/etc/letsencrypt", "example.com", directoryUrl);
 * const pair = await store.loadCertificate();
 * ```
 *
 * @module
 */

import { X509Certificate } from "node:crypto";
import { log } from "../log.ts";
import { generateAccountKey, P256 } from "./acme/jws.ts";
import { pemBlocks } from "./pem.ts";

/** A certificate chain and its key, both PEM: what a TLS listener needs. */
export interface CertificatePair {
  /** The full chain, leaf first. */
  readonly cert: string;
  /** The leaf's private key. */
  readonly key: string;
}

/** What the proxy needs to know about a leaf certificate. */
export interface CertificateInfo {
  /** dNSName subjectAltNames (or the CN when there are none). */
  readonly names: readonly string[];
  /** Start of validity. */
  readonly notBefore: Date;
  /** End of validity. */
  readonly notAfter: Date;
  /** Serial number, upper-case hex. */
  readonly serial: string;
  /** The leaf's DER bytes. */
  readonly der: Uint8Array;
}

/** Reads the leaf (first block) of a PEM chain. Throws `TypeError` when there is none. */
export function certificateInfo(fullchain: string): CertificateInfo {
  const [leafPem] = pemBlocks(fullchain, "CERTIFICATE");
  if (!leafPem) throw new TypeError("No certificate found in PEM text");
  const leaf = new X509Certificate(leafPem);
  const sans = (leaf.subjectAltName ?? "").split(", ")
    .filter((entry) => entry.startsWith("DNS:"))
    .map((entry) => entry.slice(4));
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(leaf.subject)?.[1];
  return {
    names: sans.length > 0 ? sans : cn ? [cn] : [],
    notBefore: new Date(leaf.validFrom),
    notAfter: new Date(leaf.validTo),
    serial: leaf.serialNumber.toUpperCase(),
    der: new Uint8Array(leaf.raw),
  };
}

/** Writes `data` to `path` atomically: a sibling temp file with `mode`, then a rename. */
export async function writeFileAtomic(path: string, data: string, mode: number): Promise<void> {
  const temp = `${path}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  try {
    await Deno.writeTextFile(temp, data, { mode, createNew: true });
    await Deno.chmod(temp, mode); // the umask may have narrowed or widened the create mode
    await Deno.rename(temp, path);
  } catch (error) {
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
}

/** A held renewal lock; release it with `await using` or {@link RenewalLock.release}. */
export interface RenewalLock extends AsyncDisposable {
  /** Removes the lock file. */
  release(): Promise<void>;
}

/** The on-disk store for one domain and one ACME directory. */
export class CertificateStore {
  /** `<storage>/live/<domain>`. */
  readonly liveDir: string;
  /** `<storage>/accounts/<directory host>/account.json`. */
  readonly accountFile: string;
  /** `<storage>/locks/<domain>.lock`. */
  readonly lockFile: string;
  readonly #staleLockMs: number;

  /**
   * @param storageDir `global.acme.storage_dir`.
   * @param domain the certificate's primary name.
   * @param directoryUrl the ACME directory, whose host names the account folder.
   * @param staleLockMs a lock older than this is taken to belong to a dead process (10 min).
   */
  constructor(storageDir: string, domain: string, directoryUrl: string, staleLockMs = 600_000) {
    if (!/^[A-Za-z0-9.*-]+$/.test(domain) || domain.includes("..")) {
      throw new TypeError(`Invalid domain "${domain}" for the certificate store`);
    }
    this.liveDir = `${storageDir}/live/${domain}`;
    this.accountFile = `${storageDir}/accounts/${new URL(directoryUrl).host}/account.json`;
    this.lockFile = `${storageDir}/locks/${domain}.lock`;
    this.#staleLockMs = staleLockMs;
  }

  /** The stored certificate and key, or null when either file is missing. */
  async loadCertificate(): Promise<CertificatePair | null> {
    try {
      const [cert, key] = await Promise.all([
        Deno.readTextFile(`${this.liveDir}/fullchain.pem`),
        Deno.readTextFile(`${this.liveDir}/privkey.pem`),
      ]);
      return { cert, key };
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return null;
      throw error;
    }
  }

  /** Stores a certificate: the key first (0600), then the chain (0644), each atomically. */
  async saveCertificate(pair: CertificatePair): Promise<void> {
    await Deno.mkdir(this.liveDir, { recursive: true, mode: 0o755 });
    await writeFileAtomic(`${this.liveDir}/privkey.pem`, pair.key, 0o600);
    await writeFileAtomic(`${this.liveDir}/fullchain.pem`, pair.cert, 0o644);
  }

  /**
   * The account key pair: loaded when stored (`existing: true`), else generated and stored
   * with mode 0600.
   */
  async loadOrCreateAccountKey(): Promise<{ keys: CryptoKeyPair; existing: boolean }> {
    try {
      const jwk = JSON.parse(await Deno.readTextFile(this.accountFile)) as JsonWebKey;
      const privateKey = await crypto.subtle.importKey("jwk", jwk, P256, true, ["sign"]);
      const { d: _d, key_ops: _ops, ...pub } = jwk;
      const publicKey = await crypto.subtle.importKey("jwk", pub, P256, true, ["verify"]);
      return { keys: { privateKey, publicKey }, existing: true };
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    const keys = await generateAccountKey();
    const jwk = await crypto.subtle.exportKey("jwk", keys.privateKey);
    await Deno.mkdir(this.accountFile.replace(/\/[^/]+$/, ""), { recursive: true, mode: 0o700 });
    await writeFileAtomic(this.accountFile, JSON.stringify(jwk), 0o600);
    log("info", "acme account key created", { file: this.accountFile });
    return { keys, existing: false };
  }

  /**
   * Takes the renewal lock (O_EXCL create holding `pid time`), or returns null when another
   * live process holds it. A lock older than the stale age is removed and taken over.
   */
  async tryLock(): Promise<RenewalLock | null> {
    await Deno.mkdir(this.lockFile.replace(/\/[^/]+$/, ""), { recursive: true, mode: 0o755 });
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const file = await Deno.open(this.lockFile, { createNew: true, write: true, mode: 0o644 });
        try {
          await file.write(new TextEncoder().encode(`${Deno.pid} ${Date.now()}\n`));
        } finally {
          file.close();
        }
        const release = () => Deno.remove(this.lockFile).catch(() => {});
        return { release, [Symbol.asyncDispose]: release };
      } catch (error) {
        if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
      }
      const holder = await Deno.readTextFile(this.lockFile).catch(() => "");
      const since = Number(holder.split(" ")[1]);
      if (Number.isFinite(since) && Date.now() - since < this.#staleLockMs) return null;
      log("warn", "removing stale renewal lock", { file: this.lockFile, holder: holder.trim() });
      await Deno.remove(this.lockFile).catch(() => {});
    }
    return null;
  }
}
