/**
 * Where the daemon's certificate comes from, and how a new one reaches the HTTPS listener:
 * the built-in ACME client, certificate files (watched, so certbot renewals are picked up),
 * or certbot run once before startup (`auto_certbot`).
 *
 * @module
 */

import { dirname } from "node:path";
import type { GlobalConfig } from "../config/schema.ts";
import { log } from "../log.ts";
import type { CertificateStatus } from "../status/document.ts";
import { CertificateManager } from "../tls/certificates.ts";
import type { ChallengeStore } from "../tls/challenges.ts";
import { certificateInfo, type CertificatePair } from "../tls/store.ts";

/** A running certificate source. */
export interface TlsSource {
  /** The certificate to serve now, or null until the first one arrives (ACME). */
  readonly initial: CertificatePair | null;
  /** For `/proxy/status`. */
  status(): CertificateStatus | null;
  /** Stops renewing and watching. */
  close(): Promise<void>;
}

/** The certificate file paths: configured, or certbot's layout for `domain`. */
function certificateFiles(g: GlobalConfig): { cert: string; key: string } {
  const live = `/etc/letsencrypt/live/${g.domain}`;
  return {
    cert: g.tls_certfile ?? `${live}/fullchain.pem`,
    key: g.tls_keyfile ?? `${live}/privkey.pem`,
  };
}

async function readPair(files: { cert: string; key: string }): Promise<CertificatePair> {
  const [cert, key] = await Promise.all([
    Deno.readTextFile(files.cert),
    Deno.readTextFile(files.key),
  ]);
  return { cert, key };
}

function fileStatus(pair: CertificatePair): CertificateStatus {
  const info = certificateInfo(pair.cert);
  return {
    names: info.names,
    not_after: info.notAfter.toISOString(),
    serial: info.serial,
    next_renewal: null,
    last_error: null,
  };
}

/**
 * Runs certbot in webroot mode for `domain` (the original's `auto_certbot`). The HTTP listener
 * must already serve `acme_webroot`. Needs `--allow-run=certbot`.
 */
async function runCertbot(g: GlobalConfig): Promise<void> {
  const args = [
    "certonly",
    "--webroot",
    "-w",
    g.acme_webroot,
    "-d",
    g.domain,
    "--non-interactive",
    "--agree-tos",
    "--keep-until-expiring",
    ...(g.email ? ["--email", g.email] : ["--register-unsafely-without-email"]),
  ];
  log("info", "running certbot", { domain: g.domain });
  const result = await new Deno.Command("certbot", { args, stdin: "null" }).output();
  const tail = new TextDecoder().decode(result.stderr).trim().split("\n").slice(-5);
  if (!result.success) log("error", "certbot failed", { code: result.code, output: tail });
  else log("info", "certbot finished", { domain: g.domain });
}

/**
 * Watches the certificate files and calls `onChange` with the new pair when they change
 * (certbot's renewals replace the symlinks under `live/`). Returns a closer.
 */
function watchFiles(
  files: { cert: string; key: string },
  onChange: (pair: CertificatePair) => void,
): () => void {
  const watcher = Deno.watchFs([dirname(files.cert), dirname(files.key)]);
  let timer: ReturnType<typeof setTimeout> | undefined;
  (async () => {
    for await (const _event of watcher) {
      clearTimeout(timer);
      // Renewals write several files; settle before reading the pair.
      timer = setTimeout(() => {
        readPair(files).then(
          onChange,
          (error) => log("warn", "cannot read renewed certificate files", { error: String(error) }),
        );
      }, 500);
    }
  })().catch(() => {});
  return () => {
    clearTimeout(timer);
    watcher.close();
  };
}

/**
 * Starts the configured certificate source, or returns null when TLS is off (no ACME, no
 * files, no certbot). `onChange` receives every later certificate.
 */
export async function startTlsSource(
  g: GlobalConfig,
  challenges: ChallengeStore,
  onChange: (pair: CertificatePair) => void,
): Promise<TlsSource | null> {
  if (g.acme.enabled) {
    const manager = CertificateManager.fromConfig(g, challenges, onChange);
    const initial = await manager.start();
    return { initial, status: () => manager.status(), close: () => manager.close() };
  }
  if (!g.auto_certbot && (g.tls_certfile === null || g.tls_keyfile === null)) return null;
  if (g.auto_certbot) await runCertbot(g);
  const files = certificateFiles(g);
  let current = await readPair(files);
  const stopWatching = watchFiles(files, (pair) => {
    if (pair.cert === current.cert && pair.key === current.key) return;
    current = pair;
    log("info", "certificate files changed", { serial: certificateInfo(pair.cert).serial });
    onChange(pair);
  });
  return {
    initial: current,
    status: () => fileStatus(current),
    close: () => Promise.resolve(stopWatching()),
  };
}
