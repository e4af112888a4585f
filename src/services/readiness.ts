/**
 * Readiness: when a launched workload can take requests. The workload's own check when it
 * has one (e.g. a Docker HEALTHCHECK), else `health_path` answering below 500, else a TCP
 * connect to the upstream port.
 *
 * @module
 */

import type { ServiceConfig } from "../config/schema.ts";
import type { Workload } from "./runtime.ts";

/** First poll delay; fast services become ready within a few milliseconds. */
const FIRST_DELAY_MS = 5;
/** Longest delay between polls. */
const MAX_DELAY_MS = 50;
/** Growth of the delay after each failed poll. */
const BACKOFF = 1.5;
/** One probe may take at most this long (a health endpoint that hangs). */
const PROBE_TIMEOUT_MS = 2000;

/**
 * Polls until the workload is ready: every 5 ms at first, backing off to every 50 ms.
 * Rejects with `signal.reason` once `signal` aborts (start timeout, exit, shutdown).
 *
 * Requires `--allow-net` for the upstream's host.
 *
 * @example
 * ```ts
 * await waitUntilReady(workload, service, AbortSignal.timeout(service.startup_timeout * 1000));
 * ```
 */
export async function waitUntilReady(
  workload: Workload,
  service: ServiceConfig,
  signal: AbortSignal,
): Promise<void> {
  let delay = FIRST_DELAY_MS;
  while (true) {
    signal.throwIfAborted();
    if (await probe(workload, service, signal)) return;
    await sleep(delay, signal);
    delay = Math.min(MAX_DELAY_MS, delay * BACKOFF);
  }
}

/** One readiness check; false on any failure except an abort of `signal`. */
async function probe(
  workload: Workload,
  service: ServiceConfig,
  signal: AbortSignal,
): Promise<boolean> {
  const attempt = new AbortController();
  const timer = setTimeout(() => attempt.abort(), PROBE_TIMEOUT_MS);
  const attemptSignal = AbortSignal.any([signal, attempt.signal]);
  try {
    if (workload.ready) return await workload.ready(attemptSignal);
    if (service.health_path !== null) {
      return await httpProbe(workload.upstream, service.health_path, attemptSignal);
    }
    return await tcpProbe(workload.upstream, attemptSignal);
  } catch (error) {
    signal.throwIfAborted();
    if (error instanceof Deno.errors.NotCapable) throw error;
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/** `GET upstream + path` answers with a status below 500. */
async function httpProbe(upstream: URL, path: string, signal: AbortSignal): Promise<boolean> {
  const url = upstream.href.replace(/\/$/, "") + path;
  const response = await fetch(url, { signal, redirect: "manual" });
  await response.body?.cancel();
  return response.status < 500;
}

/** A TCP connection to the upstream's port is accepted. */
async function tcpProbe(upstream: URL, signal: AbortSignal): Promise<boolean> {
  const hostname = upstream.hostname.replace(/^\[(.*)\]$/, "$1");
  const port = Number(upstream.port) || (upstream.protocol === "https:" ? 443 : 80);
  signal.throwIfAborted();
  const connecting = Deno.connect({ hostname, port });
  let onAbort = () => {};
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    const conn = await Promise.race([connecting, aborted]);
    conn.close();
    return true;
  } catch (error) {
    // A connect that completes after the abort must not leak its socket.
    connecting.then((conn) => conn.close(), () => {});
    throw error;
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

/** Waits `ms`, or rejects with `signal.reason` as soon as it aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
