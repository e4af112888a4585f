/**
 * An RFC 8555 ACME client for HTTP-01: directory, nonce pool with `badNonce` retry, account
 * create-or-reuse, order, challenge, polling that honours `Retry-After`, finalize, download of
 * the full chain; plus ARI (RFC 9773) renewal windows when the directory offers them.
 *
 * Needs `--allow-net` for the directory's host.
 *
 * @example
 * ```ts
 * const client = new AcmeClient({ directoryUrl, accountKey, contact: ["mailto:ops@example.com"] });
 * const fullchain = await client.obtainCertificate(["example.com"], csrDer, challenges);
 * ```
 *
 * @module
 */

import { log } from "../../log.ts";
import { ariCertId, parseRenewalInfo, type RenewalWindow } from "./ari.ts";
import { base64url, keyAuthorization, publicJwk, signJws } from "./jws.ts";

/** The directory resources this client uses (RFC 8555 §7.1.1, RFC 9773 §4). */
export interface AcmeDirectory {
  /** URL for fresh nonces. */
  newNonce: string;
  /** URL to create or find an account. */
  newAccount: string;
  /** URL to create an order. */
  newOrder: string;
  /** ARI base URL, when the server offers it. */
  renewalInfo?: string;
}

/** Where the HTTP-01 key authorizations go while a challenge is being validated. */
export interface ChallengePublisher {
  /** Make `keyAuthorization` answer `GET /.well-known/acme-challenge/<token>`. */
  publish(token: string, keyAuthorization: string): void | Promise<void>;
  /** Stop answering for `token`. */
  unpublish(token: string): void | Promise<void>;
}

/** Options for {@link AcmeClient}. */
export interface AcmeClientOptions {
  /** The ACME directory URL. */
  directoryUrl: string;
  /** The account's ES256 key pair. */
  accountKey: CryptoKeyPair;
  /** True when the key was loaded from disk: find the account with `onlyReturnExisting` first. */
  existingAccount?: boolean;
  /** Account contact URLs, e.g. `["mailto:ops@example.com"]`. */
  contact?: string[];
  /** An HTTP client, e.g. one trusting a private CA (`Deno.createHttpClient({caCerts})`). */
  httpClient?: Deno.HttpClient;
  /** How many times one request is re-sent after `badNonce` (default 10). */
  badNonceRetries?: number;
  /** Upper bound on all polling for one order, in ms (default 120 000). */
  pollTimeoutMs?: number;
  /** Poll delay when the server sends no `Retry-After`, in ms (default 1 000). */
  pollIntervalMs?: number;
}

/** An ACME problem document (RFC 8555 §6.7) as an error. */
export class AcmeError extends Error {
  /** The problem type URN, e.g. `urn:ietf:params:acme:error:badNonce`. */
  readonly type: string;
  /** The HTTP status. */
  readonly status: number;
  /** Builds one from a problem document. */
  constructor(status: number, problem: { type?: string; detail?: string }, url: string) {
    super(`ACME ${problem.type ?? "error"} (${status}) at ${url}: ${problem.detail ?? ""}`.trim());
    this.name = "AcmeError";
    this.type = problem.type ?? "about:blank";
    this.status = status;
  }
}

const ERR = "urn:ietf:params:acme:error:";
const MAX_RETRY_AFTER_MS = 10_000;

interface Order {
  status: string;
  authorizations: string[];
  finalize: string;
  certificate?: string;
  error?: { type?: string; detail?: string };
}

interface Authorization {
  status: string;
  identifier: { value: string };
  challenges: { type: string; url: string; token: string; status: string; error?: unknown }[];
}

/** The delay a `Retry-After` header asks for (seconds or HTTP date), capped; `fallback` if none. */
export function retryAfterMs(header: string | null, fallback: number, now = Date.now()): number {
  if (header === null) return fallback;
  const seconds = Number(header);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(header) - now;
  return Number.isFinite(ms) ? Math.min(Math.max(ms, 0), MAX_RETRY_AFTER_MS) : fallback;
}

/**
 * An ACME account session against one directory. Requests may overlap: they share the nonce
 * pool, and a nonce is never used twice.
 */
export class AcmeClient {
  readonly #options: AcmeClientOptions;
  readonly #nonces: string[] = [];
  #directory?: AcmeDirectory;
  #jwk?: JsonWebKey;
  #kid?: string;

  /** Creates a client; nothing is fetched until first use. */
  constructor(options: AcmeClientOptions) {
    this.#options = options;
  }

  /** Fetches (once) and returns the directory. */
  async directory(): Promise<AcmeDirectory> {
    if (this.#directory) return this.#directory;
    const response = await this.#fetch(this.#options.directoryUrl, { method: "GET" });
    const body = await response.json();
    if (!response.ok) throw new AcmeError(response.status, body, this.#options.directoryUrl);
    for (const key of ["newNonce", "newAccount", "newOrder"] as const) {
      if (typeof body[key] !== "string") {
        throw new TypeError(`ACME directory ${this.#options.directoryUrl} lacks "${key}"`);
      }
    }
    this.#directory = body as AcmeDirectory;
    return this.#directory;
  }

  /**
   * The account URL (`kid`): found with `onlyReturnExisting` when the key came from disk,
   * else (or when the server no longer knows it) created, agreeing to the terms of service.
   */
  async accountUrl(): Promise<string> {
    if (this.#kid) return this.#kid;
    const { newAccount } = await this.directory();
    if (this.#options.existingAccount) {
      try {
        const found = await this.#post(newAccount, { onlyReturnExisting: true }, "jwk");
        await found.body?.cancel();
        this.#kid = this.#location(found, newAccount);
        log("info", "acme account reused", { account: this.#kid });
        return this.#kid;
      } catch (error) {
        if (!(error instanceof AcmeError && error.type === `${ERR}accountDoesNotExist`)) {
          throw error;
        }
      }
    }
    const payload = { termsOfServiceAgreed: true, contact: this.#options.contact ?? [] };
    const created = await this.#post(newAccount, payload, "jwk");
    await created.body?.cancel();
    this.#kid = this.#location(created, newAccount);
    log("info", "acme account created", { account: this.#kid });
    return this.#kid;
  }

  /**
   * Orders a certificate for `names`, solves every HTTP-01 challenge through `challenges`,
   * finalizes with `csrDer` and returns the full chain as PEM.
   */
  async obtainCertificate(
    names: readonly string[],
    csrDer: Uint8Array,
    challenges: ChallengePublisher,
  ): Promise<string> {
    const deadline = Date.now() + (this.#options.pollTimeoutMs ?? 120_000);
    const { newOrder } = await this.directory();
    const identifiers = names.map((value) => ({ type: "dns", value }));
    const created = await this.#post(newOrder, { identifiers });
    const orderUrl = this.#location(created, newOrder);
    let order = await created.json() as Order;
    log("info", "acme order created", { order: orderUrl, names });
    for (const url of order.authorizations) await this.#authorize(url, challenges, deadline);
    order = await this.#poll<Order>(orderUrl, deadline, (o) => o.status !== "pending");
    if (order.status === "ready") {
      const finalized = await this.#post(order.finalize, { csr: base64url(csrDer) });
      await finalized.body?.cancel();
      order = await this.#poll<Order>(
        orderUrl,
        deadline,
        (o) => o.status !== "ready" && o.status !== "processing",
      );
    }
    if (order.status !== "valid" || !order.certificate) {
      throw new AcmeError(403, order.error ?? { detail: `order is ${order.status}` }, orderUrl);
    }
    const certificate = await this.#post(order.certificate, null, "kid", {
      accept: "application/pem-certificate-chain",
    });
    return await certificate.text();
  }

  /**
   * The server's suggested renewal window for a certificate (DER), or null when the directory
   * offers no ARI. Network or format errors reject.
   */
  async renewalInfo(certificateDer: Uint8Array): Promise<RenewalWindow | null> {
    const { renewalInfo } = await this.directory();
    if (!renewalInfo) return null;
    const url = `${renewalInfo.replace(/\/$/, "")}/${ariCertId(certificateDer)}`;
    const response = await this.#fetch(url, { method: "GET" });
    const body = await response.json();
    if (!response.ok) throw new AcmeError(response.status, body, url);
    return parseRenewalInfo(body);
  }

  async #authorize(url: string, challenges: ChallengePublisher, deadline: number): Promise<void> {
    const authz = await (await this.#post(url, null)).json() as Authorization;
    if (authz.status === "valid") return;
    const challenge = authz.challenges.find((c) => c.type === "http-01");
    if (!challenge) {
      throw new TypeError(`Authorization for "${authz.identifier.value}" offers no http-01`);
    }
    this.#jwk ??= await publicJwk(this.#options.accountKey.publicKey);
    const keyAuth = await keyAuthorization(challenge.token, this.#jwk);
    await challenges.publish(challenge.token, keyAuth);
    try {
      const responded = await this.#post(challenge.url, {});
      await responded.body?.cancel();
      const done = await this.#poll<Authorization>(
        url,
        deadline,
        (a) => a.status !== "pending" && a.status !== "processing",
      );
      if (done.status !== "valid") {
        const failed = done.challenges.find((c) => c.type === "http-01");
        throw new AcmeError(403, {
          type: `${ERR}unauthorized`,
          detail: `authorization for "${authz.identifier.value}" is ${done.status}: ${
            JSON.stringify(failed?.error ?? null)
          }`,
        }, url);
      }
      log("info", "acme authorization valid", { name: authz.identifier.value });
    } finally {
      await challenges.unpublish(challenge.token);
    }
  }

  /** POST-as-GET `url` until `done(body)`, sleeping per `Retry-After`, until `deadline`. */
  async #poll<T>(url: string, deadline: number, done: (body: T) => boolean): Promise<T> {
    const fallback = this.#options.pollIntervalMs ?? 1_000;
    for (;;) {
      const response = await this.#post(url, null);
      const body = await response.json() as T;
      if (done(body)) return body;
      const wait = retryAfterMs(response.headers.get("retry-after"), fallback);
      if (Date.now() + wait > deadline) {
        throw new Error(`Timed out polling ACME resource ${url}`);
      }
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }

  /**
   * Signs and POSTs `payload` (null = POST-as-GET) to `url`, re-sending with a fresh nonce on
   * `badNonce`. Resolves with the successful response, body unread; rejects with AcmeError.
   */
  async #post(
    url: string,
    payload: unknown,
    keyRef: "jwk" | "kid" = "kid",
    headers: Record<string, string> = {},
  ): Promise<Response> {
    const retries = this.#options.badNonceRetries ?? 10;
    for (let attempt = 0;; attempt++) {
      const nonce = await this.#nonce();
      const key = keyRef === "jwk"
        ? { jwk: this.#jwk ??= await publicJwk(this.#options.accountKey.publicKey) }
        : { kid: await this.accountUrl() };
      const body = await signJws(
        this.#options.accountKey.privateKey,
        { ...key, nonce, url },
        payload,
      );
      const response = await this.#fetch(url, {
        method: "POST",
        headers: { "content-type": "application/jose+json", ...headers },
        body: JSON.stringify(body),
      });
      if (response.ok) return response;
      const problem = await response.json().catch(() => ({}));
      const error = new AcmeError(response.status, problem, url);
      if (error.type !== `${ERR}badNonce` || attempt >= retries) throw error;
      log("debug", "acme badNonce, retrying", { url, attempt: attempt + 1 });
    }
  }

  async #nonce(): Promise<string> {
    const pooled = this.#nonces.pop();
    if (pooled) return pooled;
    const { newNonce } = await this.directory();
    const response = await this.#fetch(newNonce, { method: "HEAD" });
    await response.body?.cancel();
    const nonce = this.#nonces.pop();
    if (!nonce) throw new AcmeError(response.status, { detail: "no Replay-Nonce" }, newNonce);
    return nonce;
  }

  /** fetch through the configured client, keeping every `Replay-Nonce` for later. */
  async #fetch(url: string, init: RequestInit): Promise<Response> {
    const response = await fetch(url, { ...init, client: this.#options.httpClient });
    const nonce = response.headers.get("replay-nonce");
    if (nonce) this.#nonces.push(nonce);
    return response;
  }

  #location(response: Response, url: string): string {
    const location = response.headers.get("location");
    if (!location) throw new AcmeError(response.status, { detail: "no Location header" }, url);
    return new URL(location, url).href;
  }
}
