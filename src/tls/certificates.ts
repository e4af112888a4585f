/**
 * The certificate manager: keeps one domain's certificate obtained and renewed by the
 * built-in ACME client, on disk in the certbot layout, and tells the listener when it changes.
 *
 * A check runs at start and then periodically (with jitter, and at the renewal moment). It
 * first adopts a newer certificate another process may have stored, then renews when due:
 * per ARI when the directory offers it, else `renew_before_days` before expiry, else when a
 * third of the lifetime is left. A failed attempt is retried with capped exponential backoff
 * while the old certificate keeps serving. Every attempt is logged.
 *
 * Needs `--allow-net` for the ACME server, `--allow-read`/`--allow-write` on `storage_dir`,
 * and `--allow-read` on `ca_bundle` when set.
 *
 * @example
 * ```ts
 * const challenges = new ChallengeStore();
 * const manager = CertificateManager.fromConfig(config.global, challenges, (pair) => {
 *   https ? https.setCertificate(pair) : startHttps(pair);
 * });
 * const pair = await manager.start(); // null until the first certificate arrives
 * ```
 *
 * @module
 */

import type { GlobalConfig } from "../config/schema.ts";
import { log } from "../log.ts";
import type { CertificateStatus } from "../status/document.ts";
import type { RenewalWindow } from "./acme/ari.ts";
import { AcmeClient, type ChallengePublisher } from "./acme/client.ts";
import { createCsr, exportPkcs8, generateCertificateKey } from "./acme/csr.ts";
import { toPem } from "./pem.ts";
import { backoffMs, nextCheckDelay, renewalTime } from "./renewal.ts";
import {
  type CertificateInfo,
  certificateInfo,
  type CertificatePair,
  CertificateStore,
} from "./store.ts";

/** Options for {@link CertificateManager}. */
export interface CertificateManagerOptions {
  /** The certificate's name (`global.domain`). */
  domain: string;
  /** Account contact (`global.email`), or null. */
  email: string | null;
  /** `global.acme`. */
  acme: GlobalConfig["acme"];
  /** Where HTTP-01 answers are published for the HTTP listener. */
  challenges: ChallengePublisher;
  /** Called with every newly served certificate (issued, renewed, or adopted from disk). */
  onChange?: (pair: CertificatePair) => void;
  /** Periodic check interval in ms, ±10 % jitter (default 12 h). */
  checkIntervalMs?: number;
  /** First retry delay after a failure in ms (default 60 s); doubles per failure. */
  retryBaseMs?: number;
  /** Longest retry delay in ms (default 6 h). */
  retryCapMs?: number;
  /** ACME poll interval when the server sends no Retry-After (default 1 s). */
  pollIntervalMs?: number;
}

/** Obtains, stores, renews and reloads one domain's certificate. */
export class CertificateManager implements AsyncDisposable {
  readonly #options: CertificateManagerOptions;
  readonly #store: CertificateStore;
  #current: { pair: CertificatePair; info: CertificateInfo } | null = null;
  #nextAttempt: Date | null = null;
  #renewAt: Date | null = null;
  #lastError: string | null = null;
  #failures = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #running: Promise<void> | null = null;
  #closed = false;

  /** Creates a manager; nothing happens until {@link CertificateManager.start}. */
  constructor(options: CertificateManagerOptions) {
    this.#options = options;
    this.#store = new CertificateStore(
      options.acme.storage_dir,
      options.domain,
      options.acme.directory_url,
    );
  }

  /** A manager for `global.domain` with `global.acme` settings. */
  static fromConfig(
    global: GlobalConfig,
    challenges: ChallengePublisher,
    onChange?: (pair: CertificatePair) => void,
  ): CertificateManager {
    return new CertificateManager({
      domain: global.domain,
      email: global.email,
      acme: global.acme,
      challenges,
      onChange,
    });
  }

  /**
   * Loads the stored certificate (if any) and schedules the first check immediately. Resolves
   * with the stored pair, or null when the first certificate is still to be obtained (then
   * `onChange` announces it).
   */
  async start(): Promise<CertificatePair | null> {
    const stored = await this.#store.loadCertificate();
    if (stored) {
      this.#current = { pair: stored, info: certificateInfo(stored.cert) };
      log("info", "certificate loaded", this.#describe(this.#current.info));
    }
    this.#schedule(0);
    return stored;
  }

  /** The certificate being served, or null before the first one. */
  get current(): CertificatePair | null {
    return this.#current?.pair ?? null;
  }

  /**
   * The `/proxy/status` view: names, expiry, serial, next renewal (the renewal moment, or the
   * next retry when that is later), last error.
   */
  status(): CertificateStatus | null {
    if (!this.#current) return null;
    const { names, notAfter, serial } = this.#current.info;
    const times = [this.#renewAt, this.#nextAttempt].filter((t) => t !== null);
    const next = times.length ? new Date(Math.max(...times.map((t) => t.getTime()))) : null;
    return {
      names,
      not_after: notAfter.toISOString(),
      serial,
      next_renewal: next?.toISOString() ?? null,
      last_error: this.#lastError,
    };
  }

  /**
   * Runs one check now (adopt from disk, renew if due) unless one is running, in which case
   * it waits for that one. Errors are recorded and logged, never thrown.
   */
  check(): Promise<void> {
    this.#running ??= this.#check().finally(() => {
      this.#running = null;
    });
    return this.#running;
  }

  /** Stops the schedule and waits for a running check. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    await this.#running;
  }

  /** Same as {@link CertificateManager.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #check(): Promise<void> {
    let delay: number;
    try {
      await this.#adoptStored();
      let dueAt = await this.#dueAt();
      if (dueAt.getTime() <= Date.now()) {
        await this.#renew();
        dueAt = await this.#dueAt();
        if (dueAt.getTime() <= Date.now()) dueAt = this.#halfLife();
      }
      this.#renewAt = dueAt;
      delay = nextCheckDelay(dueAt, Date.now(), this.#options.checkIntervalMs ?? 43_200_000);
    } catch (error) {
      this.#failures++;
      this.#lastError = describeError(error);
      delay = backoffMs(
        this.#failures,
        this.#options.retryBaseMs ?? 60_000,
        this.#options.retryCapMs ?? 21_600_000,
      );
      log("warn", "certificate renewal failed", {
        domain: this.#options.domain,
        failures: this.#failures,
        error: this.#lastError,
        retry_in_s: Math.round(delay / 1000),
        serving: this.#current ? this.#current.info.serial : null,
      });
    }
    this.#schedule(delay);
  }

  /**
   * Takes over a stored certificate newer than the one served (renewed by another process).
   * Resolves true when it did.
   */
  async #adoptStored(): Promise<boolean> {
    const stored = await this.#store.loadCertificate();
    if (!stored || stored.cert === this.#current?.pair.cert) return false;
    const info = certificateInfo(stored.cert);
    if (this.#current && info.notAfter <= this.#current.info.notAfter) return false;
    this.#serve(stored, info, "certificate reloaded from disk");
    return true;
  }

  /** When the served certificate is due; now when there is none. */
  async #dueAt(): Promise<Date> {
    if (!this.#current) return new Date();
    const { info } = this.#current;
    return renewalTime(info, this.#options.acme.renew_before_days, await this.#ari(info));
  }

  /**
   * Half-way through the served certificate's lifetime. A fresh certificate that is already
   * due (`renew_before_days` at least its whole lifetime) waits this long instead of being
   * ordered again at once, and again, forever.
   */
  #halfLife(): Date {
    const { notBefore, notAfter } = this.#current!.info;
    log("warn", "renew_before_days is not shorter than the certificate lifetime", {
      domain: this.#options.domain,
      renew_before_days: this.#options.acme.renew_before_days,
    });
    return new Date((notBefore.getTime() + notAfter.getTime()) / 2);
  }

  /** The ARI window, or null when unavailable (errors only logged: ARI is advisory). */
  async #ari(info: CertificateInfo): Promise<RenewalWindow | null> {
    try {
      return await this.#withClient((client) => client.renewalInfo(info.der));
    } catch (error) {
      log("debug", "acme renewalInfo unavailable", { error: String(error) });
      return null;
    }
  }

  async #renew(): Promise<void> {
    const { domain } = this.#options;
    await using lock = await this.#store.tryLock();
    if (!lock) throw new Error(`Another process holds the renewal lock ${this.#store.lockFile}`);
    // The lock holder before us may have renewed already.
    if (await this.#adoptStored()) return;
    log("info", "certificate renewal attempt", {
      domain,
      attempt: this.#failures + 1,
      serving: this.#current?.info.serial ?? null,
    });
    const keys = await generateCertificateKey();
    const csr = await createCsr(keys, [domain]);
    const cert = await this.#withClient(
      (client) => client.obtainCertificate([domain], csr, this.#options.challenges),
    );
    const key = toPem("PRIVATE KEY", await exportPkcs8(keys.privateKey));
    const info = certificateInfo(cert);
    await this.#store.saveCertificate({ cert, key });
    this.#serve({ cert, key }, info, "certificate issued");
  }

  /**
   * Runs `use` with a fresh client on the stored account key: a CA that restarted has
   * forgotten the account, and a fresh client finds or re-creates it.
   */
  async #withClient<T>(use: (client: AcmeClient) => Promise<T>): Promise<T> {
    const { acme, email } = this.#options;
    const caCerts = acme.ca_bundle ? [await Deno.readTextFile(acme.ca_bundle)] : undefined;
    using httpClient = Deno.createHttpClient({ caCerts });
    const account = await this.#store.loadOrCreateAccountKey();
    return await use(
      new AcmeClient({
        directoryUrl: acme.directory_url,
        accountKey: account.keys,
        existingAccount: account.existing,
        contact: email ? [`mailto:${email}`] : [],
        httpClient,
        pollIntervalMs: this.#options.pollIntervalMs,
      }),
    );
  }

  /** Serves a newer certificate: the renewal problem, if any, is solved. */
  #serve(pair: CertificatePair, info: CertificateInfo, msg: string): void {
    this.#current = { pair, info };
    this.#failures = 0;
    this.#lastError = null;
    log("info", msg, this.#describe(info));
    this.#options.onChange?.(pair);
  }

  #schedule(delay: number): void {
    clearTimeout(this.#timer);
    if (this.#closed) return;
    this.#nextAttempt = new Date(Date.now() + delay);
    this.#timer = setTimeout(() => this.check(), delay);
  }

  #describe(info: CertificateInfo): Record<string, unknown> {
    return {
      domain: this.#options.domain,
      names: info.names,
      serial: info.serial,
      not_after: info.notAfter.toISOString(),
    };
  }
}

/** An error's message with its cause, e.g. "fetch failed: Connection refused (os error 111)". */
function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : "";
  return error.message + cause;
}
